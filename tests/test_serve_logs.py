"""The log line of each delivery attempt, as `soku serve` writes it: a failure names its error."""

from __future__ import annotations

from pathlib import Path

from tests.test_serve import (
    json_lines,
    quickstart_key,
    serving,
    soku_env,
    wait_for_status,
)

TEXT_TO_X = {"post": {"content": {"text": "Twice the same words.", "platform": ["x"]}}}


def test_a_failed_delivery_is_logged_as_a_warning_with_its_error(tmp_path: Path) -> None:
    env = soku_env(SOKU_DATA_DIR=str(tmp_path / "data"))
    headers = {"soku-api-key": quickstart_key(env)}
    with serving(env, tmp_path / "logs") as server, server.client() as http:
        fault = {"on": "publish", "error_code": "duplicate_content"}
        assert http.post("/sandbox/x/_faults", json=fault).status_code == 201
        created = http.post("/v1/posts", json=TEXT_TO_X, headers=headers)
        assert created.status_code == 201, created.text
        post_id = created.json()["postSubmissionId"]
        wait_for_status(http, post_id, headers, status="failed")

    finished = [
        r
        for r in json_lines(server.stderr())
        if r.get("event") == "delivery_finished" and r.get("post_id") == post_id
    ]
    assert len(finished) == 1, finished
    [line] = finished
    assert (line["level"], line["outcome"], line["status"]) == ("warning", "failed", "failed")
    assert (line["platform"], line["error_code"], line["http_status"]) == (
        "x",
        "duplicate_content",
        403,
    )
    assert "duplicate" in line["error"]


def test_a_token_refresh_is_logged_and_so_is_a_refused_one(tmp_path: Path) -> None:
    """The only trace of a refresh used to be the account's new expiry: now a line says so,
    with the account and the post it happened for; a refused one is a warning."""
    env = soku_env(SOKU_DATA_DIR=str(tmp_path / "data"))
    headers = {"soku-api-key": quickstart_key(env)}
    expired = {"on": "publish", "error_code": "token_expired", "times": 1}
    with serving(env, tmp_path / "logs") as server, server.client() as http:
        assert http.post("/sandbox/x/_faults", json=expired).status_code == 201
        created = http.post("/v1/posts", json=TEXT_TO_X, headers=headers)
        assert created.status_code == 201, created.text
        refreshed_post = created.json()["postSubmissionId"]
        wait_for_status(http, refreshed_post, headers, status="published")

        refused = {"on": "token", "status": 400, "error_code": "invalid_grant"}
        for fault in (expired, refused):
            assert http.post("/sandbox/x/_faults", json=fault).status_code == 201
        again = {"post": {"content": {"text": "Other words.", "platform": ["x"]}}}
        created = http.post("/v1/posts", json=again, headers=headers)
        assert created.status_code == 201, created.text
        refused_post = created.json()["postSubmissionId"]
        wait_for_status(http, refused_post, headers, status="failed")

    lines = json_lines(server.stderr())
    [done] = [r for r in lines if r.get("event") == "token_refreshed"]
    assert (done["level"], done["account_id"], done["platform"]) == ("info", "x_main", "x")
    assert done["post_id"] == refreshed_post and done["expires_at"]
    [no] = [r for r in lines if r.get("event") == "token_refresh_refused"]
    assert (no["level"], no["account_id"], no["post_id"]) == ("warning", "x_main", refused_post)
    assert no["error_code"]
