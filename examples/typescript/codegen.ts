// Generates src/gql/ (typed documents, the `graphql()` helper's types) from finql's committed
// schema and the shared operations. Every custom scalar is mapped: `strictScalars` fails the
// generation when finql adds one this map does not name, rather than typing it `any`.
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["../operations.graphql"],
  // Imports with `.js`, as Node's ES modules resolve them.
  emitLegacyCommonJSImports: false,
  generates: {
    "src/gql/": {
      preset: "client",
      config: {
        strictScalars: true,
        // Decimals travel as strings of digits ("2500.89"): never a JS number, which would
        // round money. Dates and times are RFC 3339 strings, UTC.
        scalars: {
          // A count beyond 32 bits, as a JSON number (exact up to 2^53).
          BigInt: "number",
          Decimal: "string",
          Date: "string",
          DateTime: "string",
        },
        enumsAsTypes: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;
