//! Unit tests of `market::calendar`.

use super::*;

const fn hm(hour: u16, minute: u16) -> Clock {
    Clock::hm(hour, minute)
}

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a valid date")
}

fn at(instant: &str) -> DateTime<Utc> {
    instant.parse().expect("an RFC 3339 instant")
}

fn sessions(status: &MarketStatus) -> Vec<String> {
    status.sessions.iter().map(|s| format!("{}-{}", s.open, s.close)).collect()
}

#[test]
fn regions_parse_in_any_case_and_unknown_ones_are_named() {
    assert_eq!(Region::parse("us"), Ok(Region::Us));
    assert_eq!(Region::parse("Global"), Ok(Region::Global));
    assert_eq!(Region::parse("fx"), Ok(Region::Fx));
    for region in Region::ALL {
        assert_eq!(Region::parse(region.code()), Ok(region));
    }
    let err = Region::parse("XX").unwrap_err();
    assert_eq!(err.to_string(), "unknown region `XX`; known regions: US, HK, CN, JP, GB, DE, GLOBAL, FX");
    assert!(Region::parse("").is_err());
    assert!(Region::parse(" US").is_err());
    let long = Region::parse(&"Z".repeat(1000)).unwrap_err().to_string();
    assert!(long.len() < 150, "{long}");
}

#[test]
fn us_open_after_the_dst_switch() {
    // 2026-03-10 is a Tuesday; New York moved to EDT (UTC-4) on Sunday 8 March.
    let s = status(Region::Us, at("2026-03-10T14:00:00Z"));
    assert_eq!(s.state, MarketState::Open);
    assert_eq!(s.timezone, "America/New_York");
    assert_eq!(s.local_time.to_rfc3339(), "2026-03-10T10:00:00-04:00");
    assert_eq!(sessions(&s), ["09:30-16:00"]);
    assert_eq!(s.next_close, Some(at("2026-03-10T20:00:00Z")));
    assert_eq!(s.next_open, Some(at("2026-03-11T13:30:00Z")));
}

#[test]
fn us_pre_market_post_market_and_closed() {
    let pre = status(Region::Us, at("2026-03-10T12:00:00Z")); // 08:00 EDT
    assert_eq!(pre.state, MarketState::PreMarket);
    assert_eq!(pre.next_open, Some(at("2026-03-10T13:30:00Z")));
    assert_eq!(pre.next_close, Some(at("2026-03-10T20:00:00Z")));

    let post = status(Region::Us, at("2026-03-10T21:00:00Z")); // 17:00 EDT
    assert_eq!(post.state, MarketState::PostMarket);
    assert_eq!(post.next_open, Some(at("2026-03-11T13:30:00Z")));

    let night = status(Region::Us, at("2026-03-11T00:30:00Z")); // 20:30 EDT
    assert_eq!(night.state, MarketState::Closed);
    assert_eq!(night.local_time.to_rfc3339(), "2026-03-10T20:30:00-04:00");
    assert_eq!(sessions(&night), ["09:30-16:00"], "the local day is still a trading day");
    assert_eq!(night.next_open, Some(at("2026-03-11T13:30:00Z")));
    assert_eq!(night.next_close, Some(at("2026-03-11T20:00:00Z")));

    let early = status(Region::Us, at("2026-03-10T07:59:00Z")); // 03:59 EDT
    assert_eq!(early.state, MarketState::Closed);
}

#[test]
fn session_bounds_are_open_at_the_start_and_closed_at_the_end() {
    assert_eq!(status(Region::Us, at("2026-03-10T13:30:00Z")).state, MarketState::Open);
    assert_eq!(status(Region::Us, at("2026-03-10T13:29:59Z")).state, MarketState::PreMarket);
    let closing = status(Region::Us, at("2026-03-10T20:00:00Z"));
    assert_eq!(closing.state, MarketState::PostMarket);
    assert_eq!(closing.next_close, Some(at("2026-03-11T20:00:00Z")), "strictly after the instant");
}

#[test]
fn the_same_local_open_is_a_different_utc_instant_in_summer_and_winter() {
    // Monday 2 March 2026, 07:00 EST, and Monday 9 March, 08:00 EDT.
    let winter = status(Region::Us, at("2026-03-02T12:00:00Z"));
    let summer = status(Region::Us, at("2026-03-09T12:00:00Z"));
    assert_eq!(winter.next_open, Some(at("2026-03-02T14:30:00Z")));
    assert_eq!(summer.next_open, Some(at("2026-03-09T13:30:00Z")));
    // Across the switch: Friday's close (EST) to Monday's open (EDT).
    let weekend = status(Region::Us, at("2026-03-06T21:30:00Z"));
    assert_eq!(weekend.next_open, Some(at("2026-03-09T13:30:00Z")));
    // London's 08:00 open around the European switch (29 March 2026).
    assert_eq!(status(Region::Gb, at("2026-03-27T09:00:00Z")).next_open, Some(at("2026-03-30T07:00:00Z")));
    assert_eq!(status(Region::Gb, at("2026-03-27T08:00:00Z")).state, MarketState::Open);
    assert_eq!(status(Region::Gb, at("2026-03-30T07:00:00Z")).state, MarketState::Open);
    assert_eq!(status(Region::Gb, at("2026-03-30T06:59:00Z")).state, MarketState::Closed);
}

#[test]
fn weekends_close_until_monday() {
    let saturday = status(Region::Us, at("2026-03-14T15:00:00Z"));
    assert_eq!(saturday.state, MarketState::Closed);
    assert!(saturday.sessions.is_empty());
    assert_eq!(saturday.next_open, Some(at("2026-03-16T13:30:00Z")));
    assert_eq!(saturday.next_close, Some(at("2026-03-16T20:00:00Z")));
    let hk_sunday = status(Region::Hk, at("2026-03-15T03:00:00Z"));
    assert_eq!(hk_sunday.state, MarketState::Closed);
    assert_eq!(hk_sunday.next_open, Some(at("2026-03-16T01:30:00Z")));
}

#[test]
fn holidays_close_for_the_day() {
    let christmas = status(Region::Us, at("2026-12-25T15:00:00Z"));
    assert_eq!(christmas.state, MarketState::Closed);
    assert!(christmas.sessions.is_empty());
    assert_eq!(christmas.next_open, Some(at("2026-12-28T14:30:00Z")));
    assert_eq!(christmas.next_close, Some(at("2026-12-28T21:00:00Z")));
    // The eve of a holiday (a half-day): the next open skips it.
    let eve = status(Region::Us, at("2026-12-24T22:00:00Z"));
    assert_eq!(eve.state, MarketState::Closed, "17:00 ET: the early close's post-market is over");
    assert_eq!(eve.next_open, Some(at("2026-12-28T14:30:00Z")));
    // CN's Spring Festival 2026: closed 16–23 February, back on Tuesday the 24th.
    let festival = status(Region::Cn, at("2026-02-18T02:00:00Z"));
    assert_eq!(festival.state, MarketState::Closed);
    assert_eq!(festival.next_open, Some(at("2026-02-24T01:30:00Z")));
    // HK's Lunar New Year: 17–19 February 2026; Friday the 20th trades.
    assert_eq!(status(Region::Hk, at("2026-02-18T02:00:00Z")).state, MarketState::Closed);
    assert_eq!(status(Region::Hk, at("2026-02-20T02:00:00Z")).state, MarketState::Open);
}

#[test]
fn hong_kong_pre_opening_and_lunch_break() {
    let pre = status(Region::Hk, at("2026-03-10T01:15:00Z")); // 09:15 HKT
    assert_eq!(pre.state, MarketState::PreMarket);
    let lunch = status(Region::Hk, at("2026-03-10T04:30:00Z")); // 12:30 HKT
    assert_eq!(lunch.state, MarketState::LunchBreak);
    assert_eq!(lunch.timezone, "Asia/Hong_Kong");
    assert_eq!(lunch.local_time.to_rfc3339(), "2026-03-10T12:30:00+08:00");
    assert_eq!(sessions(&lunch), ["09:30-12:00", "13:00-16:00"]);
    assert_eq!(lunch.next_open, Some(at("2026-03-10T05:00:00Z")));
    assert_eq!(lunch.next_close, Some(at("2026-03-10T08:00:00Z")));
    let afternoon = status(Region::Hk, at("2026-03-10T07:00:00Z"));
    assert_eq!(afternoon.state, MarketState::Open);
    assert_eq!(status(Region::Hk, at("2026-03-10T08:00:00Z")).state, MarketState::Closed);
}

#[test]
fn china_auction_sessions_and_lunch() {
    assert_eq!(status(Region::Cn, at("2026-03-10T01:20:00Z")).state, MarketState::PreMarket); // 09:20
    let open = status(Region::Cn, at("2026-03-10T02:00:00Z")); // 10:00 CST
    assert_eq!(open.state, MarketState::Open);
    assert_eq!(open.timezone, "Asia/Shanghai");
    assert_eq!(sessions(&open), ["09:30-11:30", "13:00-15:00"]);
    assert_eq!(open.next_close, Some(at("2026-03-10T03:30:00Z")));
    let lunch = status(Region::Cn, at("2026-03-10T04:00:00Z")); // 12:00 CST
    assert_eq!(lunch.state, MarketState::LunchBreak);
    assert_eq!(lunch.next_open, Some(at("2026-03-10T05:00:00Z")));
    assert_eq!(lunch.next_close, Some(at("2026-03-10T07:00:00Z")));
}

#[test]
fn tokyo_lunch_and_the_longer_afternoon() {
    let lunch = status(Region::Jp, at("2026-03-10T02:45:00Z")); // 11:45 JST
    assert_eq!(lunch.state, MarketState::LunchBreak);
    assert_eq!(lunch.next_open, Some(at("2026-03-10T03:30:00Z")));
    assert_eq!(lunch.next_close, Some(at("2026-03-10T06:30:00Z")));
    assert_eq!(status(Region::Jp, at("2026-03-10T06:15:00Z")).state, MarketState::Open); // 15:15 JST
    assert_eq!(status(Region::Jp, at("2026-03-10T06:30:00Z")).state, MarketState::Closed);
}

#[test]
fn europe() {
    let frankfurt = status(Region::De, at("2026-07-01T15:00:00Z")); // 17:00 CEST
    assert_eq!(frankfurt.state, MarketState::Open);
    assert_eq!(frankfurt.next_close, Some(at("2026-07-01T15:30:00Z")));
    assert_eq!(status(Region::De, at("2026-12-24T10:00:00Z")).state, MarketState::Closed);
    let london = status(Region::Gb, at("2026-07-01T15:29:00Z")); // 16:29 BST
    assert_eq!(london.state, MarketState::Open);
    assert_eq!(london.local_time.to_rfc3339(), "2026-07-01T16:29:00+01:00");
}

#[test]
fn crypto_never_closes() {
    for instant in ["2026-03-14T15:00:00Z", "2026-12-25T00:00:00Z", "2026-03-08T07:00:00Z"] {
        let s = status(Region::Global, at(instant));
        assert_eq!(s.state, MarketState::Open);
        assert_eq!(s.timezone, "UTC");
        assert_eq!(sessions(&s), ["00:00-24:00"]);
        assert_eq!((s.next_open, s.next_close), (None, None));
    }
}

#[test]
fn fx_trades_from_sunday_evening_to_friday_evening_new_york_time() {
    let saturday = status(Region::Fx, at("2026-03-14T15:00:00Z"));
    assert_eq!(saturday.state, MarketState::Closed);
    assert!(saturday.sessions.is_empty());
    assert_eq!(saturday.next_open, Some(at("2026-03-15T21:00:00Z"))); // Sunday 17:00 EDT
    assert_eq!(saturday.next_close, Some(at("2026-03-20T21:00:00Z")));

    let sunday = status(Region::Fx, at("2026-03-15T21:00:00Z"));
    assert_eq!(sunday.state, MarketState::Open);
    assert_eq!(sessions(&sunday), ["17:00-24:00"]);

    let wednesday = status(Region::Fx, at("2026-03-11T04:00:00Z")); // midnight EDT
    assert_eq!(wednesday.state, MarketState::Open);
    assert_eq!(sessions(&wednesday), ["00:00-24:00"]);
    assert_eq!(wednesday.next_close, Some(at("2026-03-13T21:00:00Z")), "midnights are not closes");
    assert_eq!(wednesday.next_open, Some(at("2026-03-15T21:00:00Z")));

    assert_eq!(status(Region::Fx, at("2026-03-13T20:59:00Z")).state, MarketState::Open);
    let friday = status(Region::Fx, at("2026-03-13T21:00:00Z"));
    assert_eq!(friday.state, MarketState::Closed);
    assert_eq!(sessions(&friday), ["00:00-17:00"]);
    // In winter the week opens an hour later in UTC.
    assert_eq!(status(Region::Fx, at("2026-01-10T12:00:00Z")).next_open, Some(at("2026-01-11T22:00:00Z")));
}

#[test]
fn beyond_the_data_weekdays_keep_the_last_hours_and_read_as_provisional() {
    let s = status(Region::Us, at("2031-01-09T12:00:00Z")); // a Thursday, 07:00 EST
    assert_eq!(s.state, MarketState::PreMarket);
    assert_eq!(s.next_open, Some(at("2031-01-09T14:30:00Z")));
    assert!(s.provisional);
    assert_eq!(s.coverage.map(|c| c.last), Some(day("2030-12-31")));
    let within = status(Region::Us, at("2030-01-04T12:00:00Z"));
    assert!(!within.provisional);
    assert!(!status(Region::Global, at("2031-01-09T12:00:00Z")).provisional);
    assert_eq!(status(Region::Fx, at("2031-01-09T12:00:00Z")).coverage, None);
}

#[test]
fn clocks_handle_dst_gaps_and_overlaps() {
    let ny = Tz::America__New_York;
    // 02:30 does not exist on 8 March 2026: an hour later, past the gap.
    assert_eq!(hm(2, 30).on(date(2026, 3, 8), ny), Some(at("2026-03-08T07:30:00Z")));
    // 01:30 happens twice on 1 November 2026: the earlier one (EDT).
    assert_eq!(hm(1, 30).on(date(2026, 11, 1), ny), Some(at("2026-11-01T05:30:00Z")));
    assert_eq!(Clock::END_OF_DAY.on(date(2026, 3, 10), ny), Some(at("2026-03-11T04:00:00Z")));
    assert_eq!(Clock::END_OF_DAY.to_string(), "24:00");
    assert_eq!(hm(9, 5).to_string(), "09:05");
}

fn day(text: &str) -> NaiveDate {
    text.parse().expect("a YYYY-MM-DD date")
}

#[test]
fn instruments_keep_their_exchange_fx_or_crypto_hours() {
    assert_eq!(Region::of(AssetClass::Stock, "HK"), Ok(Region::Hk));
    assert_eq!(Region::of(AssetClass::Index, "US"), Ok(Region::Us));
    assert_eq!(Region::of(AssetClass::Future, "US"), Ok(Region::Us));
    assert_eq!(Region::of(AssetClass::Forex, "GLOBAL"), Ok(Region::Fx));
    assert_eq!(Region::of(AssetClass::Crypto, "GLOBAL"), Ok(Region::Global));
    assert!(Region::of(AssetClass::Stock, "MARS").is_err());
}

#[test]
fn sessions_of_a_day_are_utc_instants_in_order_and_follow_dst() {
    // New York: EDT in July, EST in December.
    assert_eq!(
        sessions_on(Region::Us, day("2026-07-06")),
        vec![(at("2026-07-06T13:30:00Z"), at("2026-07-06T20:00:00Z"))]
    );
    assert_eq!(
        sessions_on(Region::Us, day("2026-12-07")),
        vec![(at("2026-12-07T14:30:00Z"), at("2026-12-07T21:00:00Z"))]
    );
    // Hong Kong: two sessions around lunch.
    assert_eq!(
        sessions_on(Region::Hk, day("2026-07-06")),
        vec![
            (at("2026-07-06T01:30:00Z"), at("2026-07-06T04:00:00Z")),
            (at("2026-07-06T05:00:00Z"), at("2026-07-06T08:00:00Z"))
        ]
    );
    // Weekends and holidays have none.
    assert!(sessions_on(Region::Us, day("2026-07-04")).is_empty());
    assert!(sessions_on(Region::Us, day("2026-11-26")).is_empty(), "Thanksgiving");
    assert!(!is_trading_day(Region::Cn, day("2026-10-01")), "National Day");
    assert!(is_trading_day(Region::Cn, day("2026-10-09")));
    // Crypto's day is the UTC day; FX's is New York's, from Sunday 17:00 to Friday 17:00.
    assert_eq!(
        sessions_on(Region::Global, day("2026-07-04")),
        vec![(at("2026-07-04T00:00:00Z"), at("2026-07-05T00:00:00Z"))]
    );
    assert!(sessions_on(Region::Fx, day("2026-07-04")).is_empty());
    assert_eq!(
        sessions_on(Region::Fx, day("2026-07-05")),
        vec![(at("2026-07-05T21:00:00Z"), at("2026-07-06T04:00:00Z"))]
    );
    assert_eq!(
        sessions_on(Region::Fx, day("2026-07-10")),
        vec![(at("2026-07-10T04:00:00Z"), at("2026-07-10T21:00:00Z"))]
    );
}

#[test]
fn neighbouring_trading_days_skip_weekends_and_holidays() {
    // Thanksgiving (Thursday) 2026: Wednesday before, Friday after.
    assert_eq!(previous_trading_day(Region::Us, day("2026-11-27")), Some(day("2026-11-25")));
    assert_eq!(next_trading_day(Region::Us, day("2026-11-25")), Some(day("2026-11-27")));
    // Monday's previous trading day is Friday.
    assert_eq!(previous_trading_day(Region::Us, day("2026-11-30")), Some(day("2026-11-27")));
    // China's National Day week.
    assert_eq!(next_trading_day(Region::Cn, day("2026-09-30")), Some(day("2026-10-08")));
    assert_eq!(previous_trading_day(Region::Global, day("2026-11-30")), Some(day("2026-11-29")));
}

#[test]
fn us_early_closes_end_the_session_at_13_00_and_the_post_market_at_17_00() {
    for eve in ["2026-12-24", "2026-11-27"] {
        // 15:30 EST on Christmas Eve and on the day after Thanksgiving.
        let afternoon = status(Region::Us, at(&format!("{eve}T20:30:00Z")));
        assert_eq!(afternoon.state, MarketState::PostMarket, "{eve}: not OPEN");
        assert_eq!(sessions(&afternoon), ["09:30-13:00"], "{eve}");
        let noon = status(Region::Us, at(&format!("{eve}T17:59:00Z")));
        assert_eq!(noon.state, MarketState::Open, "{eve}");
        assert_eq!(noon.next_close, Some(at(&format!("{eve}T18:00:00Z"))), "{eve}");
        assert_eq!(status(Region::Us, at(&format!("{eve}T22:00:00Z"))).state, MarketState::Closed, "{eve}");
        assert_eq!(status(Region::Us, at(&format!("{eve}T21:59:00Z"))).state, MarketState::PostMarket, "{eve}");
    }
    // 3 July 2025, the day before Independence Day, EDT.
    let july = status(Region::Us, at("2025-07-03T17:30:00Z"));
    assert_eq!((july.state, sessions(&july)), (MarketState::PostMarket, vec!["09:30-13:00".to_owned()]));
    assert_eq!(
        sessions_on(Region::Us, day("2026-12-24")),
        vec![(at("2026-12-24T14:30:00Z"), at("2026-12-24T18:00:00Z"))]
    );
}

#[test]
fn hong_kong_half_days_have_no_afternoon() {
    for eve in ["2026-12-24", "2026-12-31", "2026-02-16"] {
        let morning = status(Region::Hk, at(&format!("{eve}T03:00:00Z"))); // 11:00 HKT
        assert_eq!(morning.state, MarketState::Open, "{eve}");
        assert_eq!(morning.next_close, Some(at(&format!("{eve}T04:00:00Z"))), "{eve}");
        assert_eq!(sessions(&morning), ["09:30-12:00"], "{eve}");
        let afternoon = status(Region::Hk, at(&format!("{eve}T05:30:00Z"))); // 13:30 HKT
        assert_eq!(afternoon.state, MarketState::Closed, "{eve}: no lunch break, no afternoon");
    }
    // Before 2011 the half-day ran 10:00-12:30.
    assert_eq!(sessions(&status(Region::Hk, at("2010-12-24T03:00:00Z"))), ["10:00-12:30"]);
}

#[test]
fn london_closes_at_12_30_on_christmas_eve_and_new_years_eve() {
    let eve = status(Region::Gb, at("2026-12-24T12:45:00Z"));
    assert_eq!(eve.state, MarketState::Closed);
    assert_eq!(sessions(&eve), ["08:00-12:30"]);
    assert_eq!(status(Region::Gb, at("2026-12-31T12:29:00Z")).state, MarketState::Open);
    assert_eq!(status(Region::Gb, at("2026-12-31T12:30:00Z")).next_open, Some(at("2027-01-04T08:00:00Z")));
    // Xetra's last trading day of 2026 closes at 14:00 CET.
    assert_eq!(sessions(&status(Region::De, at("2026-12-30T12:00:00Z"))), ["09:00-14:00"]);
}

#[test]
fn every_market_closes_for_its_holidays() {
    for (region, instant, what) in [
        (Region::Us, "2026-11-26T15:00:00Z", "Thanksgiving"),
        (Region::Hk, "2026-12-25T03:00:00Z", "Christmas Day"),
        (Region::Cn, "2026-10-05T03:00:00Z", "National Day week"),
        (Region::Jp, "2026-11-23T03:00:00Z", "Labour Thanksgiving Day"),
        (Region::Gb, "2026-12-28T10:00:00Z", "Boxing Day (observed)"),
        (Region::De, "2026-12-24T10:00:00Z", "Christmas Eve"),
        (Region::Us, "2025-01-09T15:00:00Z", "national day of mourning for President Carter"),
        (Region::Us, "2001-09-12T15:00:00Z", "after 11 September"),
    ] {
        let s = status(region, at(instant));
        assert_eq!(s.state, MarketState::Closed, "{region} {what}");
        assert!(s.sessions.is_empty(), "{region} {what}");
        assert!(!s.provisional, "{region} {what}");
    }
}

#[test]
fn the_year_end_skips_new_years_day() {
    // HK: New Year's Eve is a half-day; 1 January 2027 is a Friday holiday.
    let hk = status(Region::Hk, at("2026-12-31T05:00:00Z"));
    assert_eq!(hk.next_open, Some(at("2027-01-04T01:30:00Z")));
    // CN: 1 January 2027 is a projected holiday.
    let cn = status(Region::Cn, at("2026-12-31T08:00:00Z"));
    assert_eq!(cn.next_open, Some(at("2027-01-04T01:30:00Z")));
    assert!(!cn.provisional, "2026 is published");
    assert!(status(Region::Cn, at("2027-01-04T02:00:00Z")).provisional, "2027 is projected");
    // JP: the year-end break runs 31 December to 3 January.
    assert_eq!(status(Region::Jp, at("2026-12-30T07:00:00Z")).next_open, Some(at("2027-01-04T00:00:00Z")));
    for region in [Region::Us, Region::Gb, Region::De] {
        let next = status(region, at("2026-12-31T22:00:00Z")).next_open.expect("an open");
        assert_eq!(next.with_timezone(&region.timezone()).date_naive(), day("2027-01-04"), "{region}");
    }
    assert_eq!(next_trading_day(Region::Cn, day("2026-12-31")), Some(day("2027-01-04")));
}

#[test]
fn regular_hours_change_by_era() {
    // HKEX opened at 10:00 until Friday 4 March 2011, at 09:30 from Monday 7 March.
    let before = status(Region::Hk, at("2011-03-04T01:45:00Z")); // 09:45 HKT
    assert_eq!(before.state, MarketState::PreMarket);
    assert_eq!(sessions(&before), ["10:00-12:30", "14:30-16:00"]);
    assert_eq!(before.next_open, Some(at("2011-03-04T02:00:00Z")));
    assert_eq!(status(Region::Hk, at("2011-03-04T06:00:00Z")).state, MarketState::LunchBreak); // 14:00
    let after = status(Region::Hk, at("2011-03-07T01:45:00Z"));
    assert_eq!(after.state, MarketState::Open);
    assert_eq!(sessions(&after), ["09:30-12:00", "13:30-16:00"]);
    // The lunch break shortened to 12:00-13:00 from Monday 5 March 2012.
    assert_eq!(status(Region::Hk, at("2012-03-02T05:15:00Z")).state, MarketState::LunchBreak); // 13:15
    assert_eq!(status(Region::Hk, at("2012-03-05T05:15:00Z")).state, MarketState::Open);
    // TSE's afternoon closes at 15:30 from 5 November 2024 (15:00 before).
    assert_eq!(status(Region::Jp, at("2024-11-01T06:15:00Z")).state, MarketState::Closed);
    assert_eq!(status(Region::Jp, at("2024-11-05T06:15:00Z")).state, MarketState::Open);
}
