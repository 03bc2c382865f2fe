//! Sign-up, login, tokens.

use serde_json::json;

use crate::helpers::*;

crate::backend_tests!(sign_up_then_me);

async fn sign_up_then_me(app: TestApp) {
    let user = app.sign_up("Ann.Lee@Example.COM").await;
    assert_eq!(user.email, "ann.lee@example.com");
    let data = app.data(Some(&user.access_token), "{ me { id email fullName } }", json!({})).await;
    assert_eq!(data["me"]["id"], user.id);
    assert_eq!(data["me"]["email"], "ann.lee@example.com");
}
