//! PROTOCOL §6.1, row by row: every allowed status transition of a customer message, and
//! every refusal (409 `invalid_transition`, 403 `forbidden`, 400 `invalid`), with the
//! check order of §3 where two failures meet.

mod common;

use common::{Hub, Socket, ADMIN};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const FAR_FUTURE: &str = "2099-01-01T00:00:00.000Z";
const PAST: &str = "2000-01-01T00:00:00.000Z";

/// Asserts an error answer: HTTP status, `{"error":{"code","message"}}` shape and code.
fn assert_error(got: (u16, Value), status: u16, code: &str) {
    let (s, b) = got;
    assert_eq!(s, status, "expected {status} {code}, got {s}: {b}");
    assert_eq!(b["error"]["code"], code, "wrong code in {b}");
    assert!(
        b["error"]["message"].is_string(),
        "error without a message: {b}"
    );
}

/// Asserts a 200 `{"message":…}` answer and returns the message.
fn ok_message(got: (u16, Value)) -> Value {
    let (s, b) = got;
    assert_eq!(s, 200, "expected 200, got {s}: {b}");
    assert!(b["message"].is_object(), "no message in {b}");
    b["message"].clone()
}

/// A hub with one contact message waiting, and the usual staff.
struct Desk {
    hub: Hub,
    msg: String,
    /// A plain agent.
    alice: (String, String),
    /// Another plain agent.
    bob: (String, String),
    /// A supervisor.
    sue: (String, String),
}

fn desk() -> Desk {
    let hub = Hub::start();
    let alice = hub.agent("Alice", "agent");
    let bob = hub.agent("Bob", "agent");
    let sue = hub.agent("Sue", "supervisor");
    let (_, contact) = hub.contact();
    let msg = hub.say(&contact, "my order never arrived")["id"]
        .as_str()
        .unwrap()
        .to_string();
    Desk {
        hub,
        msg,
        alice,
        bob,
        sue,
    }
}

impl Desk {
    fn act(&self, token: &str, action: &str, body: Value) -> (u16, Value) {
        self.hub.act(token, &self.msg, action, body)
    }
    fn current(&self) -> Value {
        self.hub.message(ADMIN, &self.msg)
    }
    fn status(&self) -> String {
        self.current()["status"].as_str().unwrap().to_string()
    }
    /// Alice takes the message.
    fn alice_assigned(&self) {
        let m = ok_message(self.act(&self.alice.1, "assign", json!({})));
        assert_eq!(m["status"], "assigned");
    }
    /// Alice takes it and puts it on hold with no end.
    fn alice_on_hold(&self) {
        self.alice_assigned();
        let m = ok_message(self.act(&self.alice.1, "hold", json!({})));
        assert_eq!(m["status"], "on_hold");
    }
    /// Alice takes it and asks for help.
    fn alice_asked_help(&self) {
        self.alice_assigned();
        let m = ok_message(self.act(
            &self.alice.1,
            "request-help",
            json!({"question": "refund?"}),
        ));
        assert_eq!(m["status"], "help_requested");
    }
    /// Alice asked; Sue took the help request herself.
    fn sue_took_help(&self) {
        self.alice_asked_help();
        let m = ok_message(self.act(&self.sue.1, "assign", json!({})));
        assert_eq!(m["status"], "assigned");
    }
    /// Alice's question was answered while Alice has a console open: help_answered,
    /// assigned to Alice. The socket keeps her online; keep it alive.
    fn alice_help_answered(&self) -> Socket {
        let sock = online(&self.hub, &self.alice);
        self.sue_took_help();
        let m = ok_message(self.act(&self.sue.1, "answer-help", json!({"answer": "yes, refund"})));
        assert_eq!(m["status"], "help_answered", "{m}");
        assert_eq!(m["assignee"], self.alice.0.as_str());
        sock
    }
    /// Answered by a reply from Alice.
    fn answered(&self) {
        let conv = self.current()["conversation_id"]
            .as_str()
            .unwrap()
            .to_string();
        let (s, b) = self.hub.post(
            &format!("/api/conversations/{conv}/replies"),
            &self.alice.1,
            json!({"text": "on its way"}),
        );
        assert_eq!(s, 201, "{b}");
        assert_eq!(self.status(), "answered");
    }
    fn archived(&self) {
        self.alice_assigned();
        let m = ok_message(self.act(&self.alice.1, "archive", json!({})));
        assert_eq!(m["status"], "archived");
    }
}

/// Opens a console for `agent` and waits until the hub lists it online.
fn online(hub: &Hub, agent: &(String, String)) -> Socket {
    let (sock, _) = hub.console(&agent.1, None);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, b) = hub.get("/api/agents", ADMIN);
        assert_eq!(s, 200, "{b}");
        let me = b["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == agent.0.as_str())
            .cloned();
        if me.map(|a| a["presence"] == "online").unwrap_or(false) {
            return sock;
        }
        assert!(Instant::now() < deadline, "agent never came online: {b}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- assign

#[test]
fn agent_assigns_a_pending_message_to_itself() {
    let d = desk();
    let m = ok_message(d.act(&d.alice.1, "assign", json!({})));
    assert_eq!(m["id"], d.msg.as_str());
    assert_eq!(m["status"], "assigned");
    assert_eq!(m["assignee"], d.alice.0.as_str());
    assert_eq!(m["help"], Value::Null);
    assert_eq!(m["hold_until"], Value::Null);
    assert_eq!(
        d.current()["status"],
        "assigned",
        "the answer matches the stored message"
    );
}

#[test]
fn agent_may_name_itself_as_agent_id() {
    let d = desk();
    let m = ok_message(d.act(&d.bob.1, "assign", json!({"agent_id": d.bob.0})));
    assert_eq!(m["status"], "assigned");
    assert_eq!(m["assignee"], d.bob.0.as_str());
}

#[test]
fn supervisor_assigns_a_pending_message_to_another_agent() {
    let d = desk();
    let m = ok_message(d.act(&d.sue.1, "assign", json!({"agent_id": d.alice.0})));
    assert_eq!(m["status"], "assigned");
    assert_eq!(m["assignee"], d.alice.0.as_str());
    assert_eq!(m["help"], Value::Null);
}

#[test]
fn admin_assigns_a_pending_message_to_another_agent() {
    let d = desk();
    let m = ok_message(d.act(ADMIN, "assign", json!({"agent_id": d.bob.0})));
    assert_eq!(m["status"], "assigned");
    assert_eq!(m["assignee"], d.bob.0.as_str());
}

#[test]
fn agent_may_not_assign_a_pending_message_to_someone_else() {
    let d = desk();
    assert_error(
        d.act(&d.alice.1, "assign", json!({"agent_id": d.bob.0})),
        403,
        "forbidden",
    );
    assert_eq!(d.status(), "pending");
    assert_eq!(d.current()["assignee"], Value::Null);
}

#[test]
fn assigning_an_unknown_agent_is_a_bad_request() {
    let d = desk();
    assert_error(
        d.act(&d.sue.1, "assign", json!({"agent_id": "a_nobody"})),
        400,
        "invalid",
    );
    assert_eq!(d.status(), "pending");
}

#[test]
fn unknown_agent_id_is_checked_before_the_message_exists_or_its_status() {
    let d = desk();
    // Body (400) before 404.
    assert_error(
        d.hub.act(
            &d.sue.1,
            "m_doesnotexist",
            "assign",
            json!({"agent_id": "a_nobody"}),
        ),
        400,
        "invalid",
    );
    // Body (400) before 409: the message is already assigned.
    d.alice_assigned();
    assert_error(
        d.act(&d.sue.1, "assign", json!({"agent_id": "a_nobody"})),
        400,
        "invalid",
    );
}

#[test]
fn assigning_an_assigned_message_is_an_invalid_transition_even_for_a_supervisor() {
    let d = desk();
    d.alice_assigned();
    assert_error(
        d.act(&d.sue.1, "assign", json!({"agent_id": d.bob.0})),
        409,
        "invalid_transition",
    );
    // An agent would be refused 403 for assigning to someone else, but the status is
    // checked first: nobody may assign an assigned message.
    assert_error(
        d.act(&d.bob.1, "assign", json!({"agent_id": d.alice.0})),
        409,
        "invalid_transition",
    );
    assert_error(
        d.act(&d.bob.1, "assign", json!({})),
        409,
        "invalid_transition",
    );
    assert_eq!(d.current()["assignee"], d.alice.0.as_str());
}

#[test]
fn assigning_an_answered_or_on_hold_or_archived_message_is_refused() {
    let d = desk();
    d.alice_on_hold();
    assert_error(
        d.act(&d.alice.1, "assign", json!({})),
        409,
        "invalid_transition",
    );
    let d = desk();
    d.answered();
    assert_error(
        d.act(&d.sue.1, "assign", json!({})),
        409,
        "invalid_transition",
    );
    let d = desk();
    d.archived();
    assert_error(
        d.act(&d.alice.1, "assign", json!({})),
        409,
        "invalid_transition",
    );
}

// ---------------------------------------------------------------- assign help

#[test]
fn supervisor_assigns_a_help_request_and_the_help_is_kept() {
    let d = desk();
    d.alice_asked_help();
    let m = ok_message(d.act(&d.sue.1, "assign", json!({"agent_id": d.bob.0})));
    assert_eq!(m["status"], "assigned");
    assert_eq!(m["assignee"], d.bob.0.as_str());
    assert_eq!(m["help"]["requested_by"], d.alice.0.as_str());
    assert_eq!(m["help"]["question"], "refund?");
    assert_eq!(m["help"]["answer"], Value::Null);
}

#[test]
fn supervisor_assigns_a_help_request_to_itself() {
    let d = desk();
    d.alice_asked_help();
    let m = ok_message(d.act(&d.sue.1, "assign", json!({})));
    assert_eq!(m["status"], "assigned");
    assert_eq!(m["assignee"], d.sue.0.as_str());
    assert_eq!(m["help"]["question"], "refund?");
}

#[test]
fn agent_may_not_assign_a_help_request() {
    let d = desk();
    d.alice_asked_help();
    assert_error(d.act(&d.bob.1, "assign", json!({})), 403, "forbidden");
    // Not even the agent who asked.
    assert_error(d.act(&d.alice.1, "assign", json!({})), 403, "forbidden");
    assert_eq!(d.status(), "help_requested");
}

// ---------------------------------------------------------------- unassign

#[test]
fn assignee_unassigns_an_assigned_message() {
    let d = desk();
    d.alice_assigned();
    let m = ok_message(d.act(&d.alice.1, "unassign", json!({})));
    assert_eq!(m["status"], "pending");
    assert_eq!(m["assignee"], Value::Null);
}

#[test]
fn assignee_unassigns_a_message_on_hold() {
    let d = desk();
    d.alice_assigned();
    ok_message(d.act(&d.alice.1, "hold", json!({"until": FAR_FUTURE})));
    let m = ok_message(d.act(&d.alice.1, "unassign", json!({})));
    assert_eq!(m["status"], "pending");
    assert_eq!(m["assignee"], Value::Null);
    assert_eq!(
        m["hold_until"],
        Value::Null,
        "a message that is no longer on hold has no hold end"
    );
}

#[test]
fn assignee_unassigns_a_help_answered_message() {
    let d = desk();
    let _console = d.alice_help_answered();
    let m = ok_message(d.act(&d.alice.1, "unassign", json!({})));
    assert_eq!(m["status"], "pending");
    assert_eq!(m["assignee"], Value::Null);
}

#[test]
fn supervisor_unassigns_someone_elses_message() {
    let d = desk();
    d.alice_on_hold();
    let m = ok_message(d.act(&d.sue.1, "unassign", json!({})));
    assert_eq!(m["status"], "pending");
    assert_eq!(m["assignee"], Value::Null);
}

#[test]
fn another_agent_may_not_unassign() {
    let d = desk();
    d.alice_assigned();
    assert_error(d.act(&d.bob.1, "unassign", json!({})), 403, "forbidden");
    assert_eq!(d.current()["assignee"], d.alice.0.as_str());
}

#[test]
fn unassigning_a_pending_or_help_requested_or_answered_message_is_refused() {
    let d = desk();
    assert_error(
        d.act(&d.sue.1, "unassign", json!({})),
        409,
        "invalid_transition",
    );
    // Bob is neither assignee nor supervisor, but the status answers first.
    assert_error(
        d.act(&d.bob.1, "unassign", json!({})),
        409,
        "invalid_transition",
    );
    d.alice_asked_help();
    assert_error(
        d.act(&d.sue.1, "unassign", json!({})),
        409,
        "invalid_transition",
    );
    let d = desk();
    d.answered();
    assert_error(
        d.act(&d.alice.1, "unassign", json!({})),
        409,
        "invalid_transition",
    );
}

// ---------------------------------------------------------------- hold

#[test]
fn assignee_holds_for_some_seconds() {
    let d = desk();
    d.alice_assigned();
    let m = ok_message(d.act(&d.alice.1, "hold", json!({"for_seconds": 3600})));
    assert_eq!(m["status"], "on_hold");
    assert_eq!(m["assignee"], d.alice.0.as_str());
    let until = m["hold_until"].as_str().expect("hold_until set");
    let at = m["at"].as_str().unwrap();
    assert!(
        until > at,
        "hold ends after the message was written: {until} vs {at}"
    );
    assert!(
        until.ends_with('Z') && until.len() == "2024-01-01T00:00:00.000Z".len(),
        "RFC 3339 ms UTC: {until}"
    );
}

#[test]
fn assignee_holds_until_a_time() {
    let d = desk();
    d.alice_assigned();
    let m = ok_message(d.act(&d.alice.1, "hold", json!({"until": FAR_FUTURE})));
    assert_eq!(m["status"], "on_hold");
    assert_eq!(m["assignee"], d.alice.0.as_str());
    assert_eq!(m["hold_until"], FAR_FUTURE);
}

#[test]
fn assignee_holds_with_no_end() {
    let d = desk();
    d.alice_assigned();
    let m = ok_message(d.act(&d.alice.1, "hold", json!({})));
    assert_eq!(m["status"], "on_hold");
    assert_eq!(m["hold_until"], Value::Null);
    assert_eq!(m["assignee"], d.alice.0.as_str());
}

#[test]
fn assignee_holds_a_help_answered_message() {
    let d = desk();
    let _console = d.alice_help_answered();
    let m = ok_message(d.act(&d.alice.1, "hold", json!({"until": FAR_FUTURE})));
    assert_eq!(m["status"], "on_hold");
    assert_eq!(m["assignee"], d.alice.0.as_str());
    assert_eq!(m["help"]["answer"], "yes, refund");
}

#[test]
fn hold_with_both_for_seconds_and_until_is_a_bad_request() {
    let d = desk();
    d.alice_assigned();
    assert_error(
        d.act(
            &d.alice.1,
            "hold",
            json!({"for_seconds": 60, "until": FAR_FUTURE}),
        ),
        400,
        "invalid",
    );
    assert_eq!(d.status(), "assigned");
}

#[test]
fn hold_until_a_past_time_is_a_bad_request() {
    let d = desk();
    d.alice_assigned();
    assert_error(
        d.act(&d.alice.1, "hold", json!({"until": PAST})),
        400,
        "invalid",
    );
    assert_eq!(d.status(), "assigned");
    // Times that parse but could not be written back as RFC 3339 (year 10000).
    for far in [
        "9999-12-31T23:59:60Z",
        "9999-12-31T23:00:00-01:00",
        "10000-01-01T00:00:00Z",
    ] {
        assert_error(
            d.act(&d.alice.1, "hold", json!({ "until": far })),
            400,
            "invalid",
        );
        assert_eq!(d.status(), "assigned", "{far}");
    }
    let m = ok_message(d.act(
        &d.alice.1,
        "hold",
        json!({"until": "9999-12-31T23:59:59.999Z"}),
    ));
    assert_eq!(m["hold_until"], "9999-12-31T23:59:59.999Z");
}

#[test]
fn hold_with_negative_zero_or_non_numeric_seconds_is_a_bad_request() {
    let d = desk();
    d.alice_assigned();
    for bad in [
        json!(-5),
        json!(-0.5),
        json!(0),
        json!("60"),
        json!(true),
        json!([1]),
    ] {
        assert_error(
            d.act(&d.alice.1, "hold", json!({"for_seconds": bad})),
            400,
            "invalid",
        );
    }
    assert_error(
        d.act(&d.alice.1, "hold", json!({"until": "tomorrow"})),
        400,
        "invalid",
    );
    // Past ten years the message says so, rather than "not positive".
    let (status, body) = d.act(&d.alice.1, "hold", json!({"for_seconds": 315_360_001}));
    assert_eq!(status, 400, "{body}");
    let text = body["error"]["message"].as_str().unwrap_or_default();
    assert!(text.contains("ten years"), "{body}");
    assert_eq!(d.status(), "assigned");
}

#[test]
fn a_bad_hold_body_answers_400_even_for_an_unknown_message() {
    let d = desk();
    assert_error(
        d.hub.act(
            &d.alice.1,
            "m_doesnotexist",
            "hold",
            json!({"for_seconds": -1}),
        ),
        400,
        "invalid",
    );
    assert_error(
        d.hub.act(&d.alice.1, "m_doesnotexist", "hold", json!({})),
        404,
        "not_found",
    );
}

#[test]
fn only_the_assignee_may_hold_not_even_a_supervisor() {
    let d = desk();
    d.alice_assigned();
    assert_error(d.act(&d.bob.1, "hold", json!({})), 403, "forbidden");
    assert_error(d.act(&d.sue.1, "hold", json!({})), 403, "forbidden");
    assert_eq!(d.status(), "assigned");
}

#[test]
fn holding_a_pending_or_on_hold_or_help_requested_message_is_refused() {
    let d = desk();
    assert_error(
        d.act(&d.alice.1, "hold", json!({})),
        409,
        "invalid_transition",
    );
    d.alice_on_hold();
    assert_error(
        d.act(&d.alice.1, "hold", json!({"for_seconds": 10})),
        409,
        "invalid_transition",
    );
    let d = desk();
    d.alice_asked_help();
    assert_error(
        d.act(&d.alice.1, "hold", json!({})),
        409,
        "invalid_transition",
    );
}

// ---------------------------------------------------------------- request help

#[test]
fn assignee_requests_help_on_an_assigned_message() {
    let d = desk();
    d.alice_assigned();
    let m = ok_message(d.act(
        &d.alice.1,
        "request-help",
        json!({"question": "can we refund twice?"}),
    ));
    assert_eq!(m["status"], "help_requested");
    assert_eq!(m["assignee"], Value::Null);
    assert_eq!(m["help"]["requested_by"], d.alice.0.as_str());
    assert_eq!(m["help"]["question"], "can we refund twice?");
    assert_eq!(m["help"]["answer"], Value::Null);
    assert_eq!(m["hold_until"], Value::Null);
}

#[test]
fn assignee_requests_help_on_a_message_on_hold() {
    let d = desk();
    d.alice_assigned();
    ok_message(d.act(&d.alice.1, "hold", json!({"until": FAR_FUTURE})));
    let m = ok_message(d.act(&d.alice.1, "request-help", json!({"question": "?"})));
    assert_eq!(m["status"], "help_requested");
    assert_eq!(m["assignee"], Value::Null);
    assert_eq!(m["help"]["requested_by"], d.alice.0.as_str());
    assert_eq!(m["hold_until"], Value::Null, "no longer on hold");
}

#[test]
fn assignee_requests_help_again_after_an_answer() {
    let d = desk();
    let _console = d.alice_help_answered();
    let m = ok_message(d.act(
        &d.alice.1,
        "request-help",
        json!({"question": "and shipping?"}),
    ));
    assert_eq!(m["status"], "help_requested");
    assert_eq!(m["assignee"], Value::Null);
    assert_eq!(m["help"]["requested_by"], d.alice.0.as_str());
    assert_eq!(m["help"]["question"], "and shipping?");
    assert_eq!(
        m["help"]["answer"],
        Value::Null,
        "a new question has no answer yet"
    );
}

#[test]
fn a_supervisor_who_took_a_message_requests_help_as_itself() {
    let d = desk();
    ok_message(d.act(&d.sue.1, "assign", json!({})));
    let m = ok_message(d.act(&d.sue.1, "request-help", json!({"question": "anyone?"})));
    assert_eq!(m["help"]["requested_by"], d.sue.0.as_str());
}

#[test]
fn only_the_assignee_may_request_help() {
    let d = desk();
    d.alice_assigned();
    assert_error(
        d.act(&d.bob.1, "request-help", json!({"question": "?"})),
        403,
        "forbidden",
    );
    assert_error(
        d.act(&d.sue.1, "request-help", json!({"question": "?"})),
        403,
        "forbidden",
    );
    assert_eq!(d.status(), "assigned");
}

#[test]
fn requesting_help_without_a_question_is_a_bad_request() {
    let d = desk();
    d.alice_assigned();
    assert_error(d.act(&d.alice.1, "request-help", json!({})), 400, "invalid");
    assert_error(
        d.act(&d.alice.1, "request-help", json!({"question": "  "})),
        400,
        "invalid",
    );
    assert_error(
        d.act(&d.alice.1, "request-help", json!({"question": 42})),
        400,
        "invalid",
    );
    assert_eq!(d.status(), "assigned");
}

#[test]
fn requesting_help_on_a_pending_or_help_requested_message_is_refused() {
    let d = desk();
    assert_error(
        d.act(&d.alice.1, "request-help", json!({"question": "?"})),
        409,
        "invalid_transition",
    );
    d.alice_asked_help();
    assert_error(
        d.act(&d.alice.1, "request-help", json!({"question": "?"})),
        409,
        "invalid_transition",
    );
}

// ---------------------------------------------------------------- answer help

#[test]
fn supervisor_answers_help_while_the_requester_is_offline_and_the_message_goes_back_to_pending() {
    let d = desk();
    d.sue_took_help();
    let m = ok_message(d.act(&d.sue.1, "answer-help", json!({"answer": "yes, refund"})));
    assert_eq!(m["status"], "pending");
    assert_eq!(m["assignee"], Value::Null);
    assert_eq!(m["help"]["requested_by"], d.alice.0.as_str());
    assert_eq!(m["help"]["question"], "refund?");
    assert_eq!(m["help"]["answer"], "yes, refund");
    assert_eq!(d.status(), "pending");
}

#[test]
fn the_agent_a_help_request_was_assigned_to_answers_it() {
    let d = desk();
    d.alice_asked_help();
    ok_message(d.act(&d.sue.1, "assign", json!({"agent_id": d.bob.0})));
    let m = ok_message(d.act(&d.bob.1, "answer-help", json!({"answer": "ask billing"})));
    assert_eq!(
        m["status"], "pending",
        "Alice has no console: she is offline"
    );
    assert_eq!(m["assignee"], Value::Null);
    assert_eq!(m["help"]["answer"], "ask billing");
}

#[test]
fn another_supervisor_answers_a_help_request_assigned_to_someone_else() {
    let d = desk();
    let (_, sam) = d.hub.agent("Sam", "supervisor");
    d.alice_asked_help();
    ok_message(d.act(&d.sue.1, "assign", json!({"agent_id": d.bob.0})));
    let m = ok_message(d.act(&sam, "answer-help", json!({"answer": "done"})));
    assert_eq!(m["help"]["answer"], "done");
    let m = d.current();
    assert_eq!(m["status"], "pending");
}

#[test]
fn an_agent_who_is_neither_assignee_nor_supervisor_may_not_answer_help() {
    let d = desk();
    d.sue_took_help();
    assert_error(
        d.act(&d.bob.1, "answer-help", json!({"answer": "x"})),
        403,
        "forbidden",
    );
    // Not even the requester: she asked, she does not answer herself.
    assert_error(
        d.act(&d.alice.1, "answer-help", json!({"answer": "x"})),
        403,
        "forbidden",
    );
    let m = d.current();
    assert_eq!(m["status"], "assigned");
    assert_eq!(m["help"]["answer"], Value::Null);
}

#[test]
fn answering_help_that_was_not_asked_or_not_yet_assigned_or_already_answered_is_refused() {
    let d = desk();
    // Assigned without any help.
    d.alice_assigned();
    assert_error(
        d.act(&d.sue.1, "answer-help", json!({"answer": "x"})),
        409,
        "invalid_transition",
    );
    // help_requested: it must be assigned first.
    ok_message(d.act(&d.alice.1, "request-help", json!({"question": "?"})));
    assert_error(
        d.act(&d.sue.1, "answer-help", json!({"answer": "x"})),
        409,
        "invalid_transition",
    );
    // Answered already (back to pending).
    ok_message(d.act(&d.sue.1, "assign", json!({})));
    ok_message(d.act(&d.sue.1, "answer-help", json!({"answer": "x"})));
    assert_error(
        d.act(&d.sue.1, "answer-help", json!({"answer": "y"})),
        409,
        "invalid_transition",
    );
    // Assigned again, help set but already answered.
    ok_message(d.act(&d.sue.1, "assign", json!({})));
    assert_error(
        d.act(&d.sue.1, "answer-help", json!({"answer": "y"})),
        409,
        "invalid_transition",
    );
    assert_eq!(d.current()["help"]["answer"], "x");
}

#[test]
fn answering_help_without_an_answer_is_a_bad_request() {
    let d = desk();
    d.sue_took_help();
    assert_error(d.act(&d.sue.1, "answer-help", json!({})), 400, "invalid");
    assert_error(
        d.act(&d.sue.1, "answer-help", json!({"answer": ""})),
        400,
        "invalid",
    );
    assert_eq!(d.current()["help"]["answer"], Value::Null);
}

// ---------------------------------------------------------------- archive

#[test]
fn assignee_archives_an_assigned_message() {
    let d = desk();
    d.alice_assigned();
    let m = ok_message(d.act(&d.alice.1, "archive", json!({})));
    assert_eq!(m["status"], "archived");
    assert_eq!(m["hold_until"], Value::Null);
}

#[test]
fn assignee_archives_a_message_on_hold() {
    let d = desk();
    d.alice_assigned();
    ok_message(d.act(&d.alice.1, "hold", json!({"until": FAR_FUTURE})));
    let m = ok_message(d.act(&d.alice.1, "archive", json!({})));
    assert_eq!(m["status"], "archived");
    assert_eq!(m["hold_until"], Value::Null);
}

#[test]
fn assignee_archives_a_help_answered_message() {
    let d = desk();
    let _console = d.alice_help_answered();
    let m = ok_message(d.act(&d.alice.1, "archive", json!({})));
    assert_eq!(m["status"], "archived");
}

#[test]
fn only_the_assignee_may_archive_not_even_a_supervisor() {
    let d = desk();
    d.alice_assigned();
    assert_error(d.act(&d.bob.1, "archive", json!({})), 403, "forbidden");
    assert_error(d.act(&d.sue.1, "archive", json!({})), 403, "forbidden");
    assert_eq!(d.status(), "assigned");
}

#[test]
fn archiving_a_pending_or_answered_or_archived_message_is_refused() {
    let d = desk();
    assert_error(
        d.act(&d.alice.1, "archive", json!({})),
        409,
        "invalid_transition",
    );
    d.archived();
    assert_error(
        d.act(&d.alice.1, "archive", json!({})),
        409,
        "invalid_transition",
    );
    let d = desk();
    d.answered();
    assert_error(
        d.act(&d.alice.1, "archive", json!({})),
        409,
        "invalid_transition",
    );
}

// ---------------------------------------------------------------- reopen

#[test]
fn any_agent_reopens_an_answered_message() {
    let d = desk();
    d.answered();
    let m = ok_message(d.act(&d.bob.1, "reopen", json!({})));
    assert_eq!(m["status"], "pending");
    assert_eq!(m["assignee"], Value::Null);
}

#[test]
fn any_agent_reopens_an_archived_message() {
    let d = desk();
    d.archived();
    let m = ok_message(d.act(&d.bob.1, "reopen", json!({})));
    assert_eq!(m["status"], "pending");
    assert_eq!(m["assignee"], Value::Null);
    // And the reopened message can be taken again.
    let m = ok_message(d.act(&d.bob.1, "assign", json!({})));
    assert_eq!(m["assignee"], d.bob.0.as_str());
}

#[test]
fn reopening_an_open_message_is_refused() {
    let d = desk();
    assert_error(
        d.act(&d.alice.1, "reopen", json!({})),
        409,
        "invalid_transition",
    );
    d.alice_on_hold();
    assert_error(
        d.act(&d.alice.1, "reopen", json!({})),
        409,
        "invalid_transition",
    );
}

// ---------------------------------------------------------------- who may call at all (§3 order)

#[test]
fn no_token_answers_401_before_anything_else() {
    let d = desk();
    for action in [
        "assign",
        "unassign",
        "hold",
        "request-help",
        "answer-help",
        "archive",
        "reopen",
    ] {
        let got = d.hub.call_raw(
            "POST",
            &format!("/api/messages/m_nope/{action}"),
            None,
            Some("{not json".into()),
        );
        assert_error(got, 401, "unauthorized");
        let got = d.hub.call(
            "POST",
            &format!("/api/messages/{}/{action}", d.msg),
            Some("bogus-token"),
            Some(json!({})),
        );
        assert_error(got, 401, "unauthorized");
    }
    assert_eq!(d.status(), "pending");
}

#[test]
fn a_contact_token_on_a_message_action_answers_403_before_the_body_is_read() {
    let d = desk();
    let (_, contact) = d.hub.contact();
    assert_error(d.act(&contact, "assign", json!({})), 403, "forbidden");
    let got = d.hub.call_raw(
        "POST",
        &format!("/api/messages/{}/assign", d.msg),
        Some(&contact),
        Some("{not json".into()),
    );
    assert_error(got, 403, "forbidden");
    let got = d.hub.act(
        &contact,
        "m_doesnotexist",
        "hold",
        json!({"for_seconds": -1}),
    );
    assert_error(got, 403, "forbidden");
    assert_eq!(d.status(), "pending");
}

#[test]
fn a_malformed_body_on_an_unknown_message_answers_400_not_404() {
    let d = desk();
    let got = d.hub.call_raw(
        "POST",
        "/api/messages/m_doesnotexist/assign",
        Some(&d.alice.1),
        Some("{not json".into()),
    );
    assert_error(got, 400, "invalid");
    assert_error(
        d.hub
            .act(&d.alice.1, "m_doesnotexist", "request-help", json!({})),
        400,
        "invalid",
    );
    assert_error(
        d.hub.act(&d.alice.1, "m_doesnotexist", "assign", json!({})),
        404,
        "not_found",
    );
    assert_error(
        d.hub.act(&d.alice.1, "m_doesnotexist", "reopen", json!({})),
        404,
        "not_found",
    );
}

#[test]
fn a_message_id_naming_a_missing_message_or_conversation_answers_404() {
    let d = desk();
    let conv = d.current()["conversation_id"].as_str().unwrap().to_string();
    assert!(
        d.msg.starts_with(&conv),
        "message ids name their conversation: {} in {conv}",
        d.msg
    );
    for id in [format!("{conv}.m2"), "c_nothere.m1".to_string()] {
        let got = d.hub.act(&d.alice.1, &id, "assign", json!({}));
        assert_error(got, 404, "not_found");
    }
    assert_eq!(d.status(), "pending");
}

#[test]
fn every_refused_action_leaves_no_trace_in_the_activities() {
    let d = desk();
    d.alice_assigned();
    let conv = d.current()["conversation_id"].as_str().unwrap().to_string();
    let before = d
        .hub
        .get(&format!("/api/conversations/{conv}/activities"), ADMIN)
        .1["items"]
        .clone();
    assert_error(d.act(&d.bob.1, "archive", json!({})), 403, "forbidden");
    assert_error(d.act(&d.bob.1, "hold", json!({})), 403, "forbidden");
    assert_error(
        d.act(&d.alice.1, "reopen", json!({})),
        409,
        "invalid_transition",
    );
    assert_error(
        d.act(&d.alice.1, "hold", json!({"until": PAST})),
        400,
        "invalid",
    );
    let after = d
        .hub
        .get(&format!("/api/conversations/{conv}/activities"), ADMIN)
        .1["items"]
        .clone();
    assert_eq!(before, after);
}

#[test]
fn each_transition_is_recorded_as_a_status_event() {
    let d = desk();
    d.alice_assigned();
    ok_message(d.act(&d.alice.1, "hold", json!({"for_seconds": 600})));
    ok_message(d.act(&d.alice.1, "request-help", json!({"question": "q"})));
    let conv = d.current()["conversation_id"].as_str().unwrap().to_string();
    let (s, b) = d
        .hub
        .get(&format!("/api/conversations/{conv}/activities"), ADMIN);
    assert_eq!(s, 200);
    let changes: Vec<(String, String)> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["kind"] == "message.status_changed" && e["data"]["message_id"] == d.msg.as_str()
        })
        .map(|e| {
            (
                e["data"]["from"].as_str().unwrap().into(),
                e["data"]["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect: Vec<(String, String)> = [
        ("on_hold", "help_requested"),
        ("assigned", "on_hold"),
        ("pending", "assigned"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(changes, expect, "newest first");
    let help = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["to"] == "help_requested")
        .unwrap();
    assert_eq!(help["data"]["question"], "q");
    assert_eq!(help["data"]["by"], d.alice.0.as_str());
}

// ---------------------------------------------------------------- hold expiry

/// Polls the message until its status leaves `on_hold`, or fails after a deadline.
fn wait_off_hold(d: &Desk) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let m = d.current();
        if m["status"] != "on_hold" {
            return m;
        }
        assert!(Instant::now() < deadline, "hold never ended: {m}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_ended_hold_goes_back_to_pending_when_the_assignee_is_offline() {
    let d = desk();
    d.alice_assigned();
    ok_message(d.act(&d.alice.1, "hold", json!({"for_seconds": 1})));
    let m = wait_off_hold(&d);
    assert_eq!(m["status"], "pending", "{m}");
    assert_eq!(m["assignee"], Value::Null);
    assert_eq!(m["hold_until"], Value::Null);
}

#[test]
fn an_ended_hold_goes_back_to_the_assignee_when_present() {
    let d = desk();
    let _console = online(&d.hub, &d.alice);
    d.alice_assigned();
    ok_message(d.act(&d.alice.1, "hold", json!({"for_seconds": 0.5})));
    let m = wait_off_hold(&d);
    assert_eq!(m["status"], "assigned", "{m}");
    assert_eq!(m["assignee"], d.alice.0.as_str());
    assert_eq!(m["hold_until"], Value::Null);
}

#[test]
fn a_status_nobody_may_act_from_answers_409_even_to_a_caller_who_could_never_act() {
    let d = desk();
    d.alice_assigned();
    // Bob is not the assignee, but answer-help from "assigned without help" is allowed
    // for nobody: 409 comes before 403.
    assert_error(
        d.act(&d.bob.1, "answer-help", json!({"answer": "x"})),
        409,
        "invalid_transition",
    );
    // Same for reopen of an open message and hold of a pending one.
    assert_error(
        d.act(&d.bob.1, "reopen", json!({})),
        409,
        "invalid_transition",
    );
    let d = desk();
    assert_error(
        d.act(&d.bob.1, "hold", json!({})),
        409,
        "invalid_transition",
    );
    assert_error(
        d.act(&d.bob.1, "request-help", json!({"question": "?"})),
        409,
        "invalid_transition",
    );
}

#[test]
fn hold_until_with_an_offset_or_without_milliseconds_is_stored_as_utc_with_milliseconds() {
    let d = desk();
    d.alice_assigned();
    let m = ok_message(d.act(
        &d.alice.1,
        "hold",
        json!({"until": "2099-01-01T01:30:00+01:30"}),
    ));
    assert_eq!(m["hold_until"], "2099-01-01T00:00:00.000Z");
    ok_message(d.act(&d.alice.1, "unassign", json!({})));
    d.alice_assigned();
    let m = ok_message(d.act(&d.alice.1, "hold", json!({"until": "2099-06-01T12:00:00Z"})));
    assert_eq!(m["hold_until"], "2099-06-01T12:00:00.000Z");
}

#[test]
fn two_agents_racing_to_take_the_same_message_one_wins() {
    let d = desk();
    let url = d.hub.url.clone();
    let racers: Vec<_> = [d.alice.1.clone(), d.bob.1.clone(), d.sue.1.clone()]
        .into_iter()
        .map(|t| {
            let (url, msg) = (url.clone(), d.msg.clone());
            std::thread::spawn(move || {
                let r = ureq::post(&format!("{url}/api/messages/{msg}/assign"))
                    .set("Authorization", &format!("Bearer {t}"))
                    .send_json(json!({}));
                match r {
                    Ok(r) => r.status(),
                    Err(ureq::Error::Status(s, _)) => s,
                    Err(e) => panic!("{e}"),
                }
            })
        })
        .collect();
    let mut got: Vec<u16> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    got.sort();
    assert_eq!(got, vec![200, 409, 409]);
    let conv = d.current()["conversation_id"].as_str().unwrap().to_string();
    let (_, acts) = d
        .hub
        .get(&format!("/api/conversations/{conv}/activities"), ADMIN);
    let n = acts["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "message.status_changed")
        .count();
    assert_eq!(n, 1, "one assignment recorded");
}
