"""The Instagram fake as the connector tests see it: its account, its media, its profile.

Instagram has no text-only post: a job names an image (`img1.jpg`) unless it names media.
Instagram takes JPEG images only, so carousels are made of the JPEG files (a query string
makes distinct URLs of one file).
"""

from __future__ import annotations

from soku.platforms.connector import ErrorKind
from soku.platforms.instagram_connector import InstagramConnector
from soku.sandbox.instagram import create_instagram_fake
from tests.platforms.graph_world import GraphEnv, connector_of, graph_profile
from tests.platforms.profile import Processing, Reconcile, Sample

USERNAME, TOKEN = "soku_instagram", "ig-access"
ACCOUNT = dict(account_id="instagram_main", username=USERNAME, access_token=TOKEN)
JPEGS = ("img1.jpg", "img5.jpg", "img1.jpg?n=3", "img5.jpg?n=4")


class Env(GraphEnv):
    """The Instagram account's world; a job that names no media posts `img1.jpg`."""

    platform, account = "instagram", ACCOUNT
    greeting, images = "Hello Instagram", ("img1.jpg",)


connector = connector_of(InstagramConnector)


PROFILE = graph_profile(
    Env,
    create_instagram_fake,
    connector,
    "Instagram",
    Reconcile(
        found=(
            Sample("image", "Find me"),
            Sample("carousel", "Find me too", {"images": JPEGS[:2]}),
            Sample("reel", "Find the reel", {"video": "clip.mp4"}),
            Sample("no-caption", None, {"images": ("img5.jpg",)}, timed=False),
        ),
        staged={"images": ("img5.jpg",)},
    ),
    Processing(
        {"on": "status", "container_error": "Error: 2207026"},
        {"video": "clip.mp4"},
        "2207026",
        {"status_code": "ERROR"},
    ),
    resume_more={"images": JPEGS[:3]},
    own_errors=(({"error_code": "restricted"}, ErrorKind.permanent, "restricted"),),
)
