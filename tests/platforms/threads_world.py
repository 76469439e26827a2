"""The Threads fake as the connector tests see it: its account, its media, its profile."""

from __future__ import annotations

from soku.platforms.threads_connector import ThreadsConnector
from soku.sandbox.threads import create_threads_fake
from tests.platforms.graph_world import GraphEnv, connector_of, graph_profile
from tests.platforms.profile import Processing, Reconcile, Sample

USERNAME, TOKEN = "soku_threads", "th-access"
ACCOUNT = dict(account_id="threads_main", username=USERNAME, access_token=TOKEN)


class Env(GraphEnv):
    """The Threads account's world."""

    platform, account, greeting = "threads", ACCOUNT, "Hello Threads"


connector = connector_of(ThreadsConnector)


PROFILE = graph_profile(
    Env,
    create_threads_fake,
    connector,
    "Threads",
    Reconcile(
        found=(
            Sample("text", "Find me"),
            Sample("carousel", "Find me too", {"images": ("img1.jpg", "img2.png")}),
            Sample("no-text", None, {"images": ("img5.jpg",)}, timed=False),
        ),
        staged={"images": ("img1.jpg",)},
    ),
    Processing(
        {"on": "status", "container_error": "INVALID_DURATION"},
        {"video": "clip.mp4"},
        "INVALID_DURATION",
        {"status": "ERROR"},
    ),
    resume_more={"images": ("img1.jpg", "img2.png", "img4.gif")},
)
