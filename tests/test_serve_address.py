"""The public base URL of `soku serve`: the address it listens on, unless
SOKU_PUBLIC_BASE_URL is set (media URLs and the sandbox platforms' calls use it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.media_files import write_image
from tests.test_serve import quickstart_key, serving, soku_env, wait_for_status


def _upload(http: httpx.Client, key: str, image: Path) -> dict[str, Any]:
    with image.open("rb") as handle:
        files = {"file": (image.name, handle, "image/png")}
        done = http.post("/v1/media/upload", files=files, headers={"soku-api-key": key})
    assert done.status_code == 201, done.text
    return dict(done.json())


def test_media_urls_and_the_sandbox_follow_the_port_served_on(tmp_path: Path) -> None:
    env = soku_env(SOKU_DATA_DIR=str(tmp_path / "data"))
    key = quickstart_key(env)
    image = tmp_path / "red.png"
    write_image(image, (200, 0, 0))
    with serving(env, tmp_path / "logs") as server, server.client() as http:
        assert not server.base_url.endswith(":8000")
        media = _upload(http, key, image)
        assert media["url"].startswith(f"{server.base_url}/media/"), media
        served = http.get(media["url"].removeprefix(server.base_url))
        assert served.status_code == 200
        assert served.content == image.read_bytes()

        # A post with that media, to X's sandbox fake: the fake reaches the server back.
        content = {"text": "red", "mediaType": "image", "imageUrls": [media["url"]]}
        body = {"post": {"content": {**content, "platform": ["x"]}}}
        created = http.post("/v1/posts", json=body, headers={"soku-api-key": key})
        assert created.status_code == 201, created.text
        post_id = created.json()["postSubmissionId"]
        published = wait_for_status(http, post_id, {"soku-api-key": key})
        [delivery] = published["deliveries"]
        assert delivery["url"].startswith(f"{server.base_url}/sandbox/x/"), delivery


def test_a_wildcard_host_gives_the_loopback_address(tmp_path: Path) -> None:
    env = soku_env(SOKU_DATA_DIR=str(tmp_path / "data"))
    key = quickstart_key(env)
    image = tmp_path / "green.png"
    write_image(image, (0, 200, 0))
    with serving(env, tmp_path / "logs", host="0.0.0.0") as server, server.client() as http:
        port = server.base_url.rpartition(":")[2]
        media = _upload(http, key, image)
    assert media["url"].startswith(f"http://127.0.0.1:{port}/media/"), media


def test_an_explicit_public_base_url_is_kept(tmp_path: Path) -> None:
    public = "https://soku.example.test/api"
    env = soku_env(SOKU_DATA_DIR=str(tmp_path / "data"), SOKU_PUBLIC_BASE_URL=public)
    key = quickstart_key(env)
    image = tmp_path / "blue.png"
    write_image(image, (0, 0, 200))
    with serving(env, tmp_path / "logs") as server, server.client() as http:
        media = _upload(http, key, image)
    assert media["url"].startswith(f"{public}/media/"), media
