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
