"""Every table, imported in one place for the migrations."""

from soku.auth.models import ApiKey, User
from soku.dashboard.models import DashboardSession
from soku.db import Base
from soku.delivery.models import Delivery, DeliveryAttempt
from soku.integrations.models import Account, OAuthState
from soku.media.models import Media, MediaPin
from soku.posts.models import IdempotencyKey, Post
from soku.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

__all__ = [
    "Account",
    "ApiKey",
    "Base",
    "DashboardSession",
    "Delivery",
    "DeliveryAttempt",
    "IdempotencyKey",
    "Media",
    "MediaPin",
    "OAuthState",
    "Post",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
