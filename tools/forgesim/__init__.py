"""A forge simulator for tests: GitHub and GitLab APIs, git over HTTP, and signed webhooks.

Test tooling only (see README.md); Mergeway's product code never imports it.
"""

from tools.forgesim.github_reviews import SimReview
from tools.forgesim.issues import SimIssue
from tools.forgesim.server import BOT, ForgeSim, SimError, running
from tools.forgesim.state import SimApp, SimComment, SimPR, SimRepo, SimStatus
from tools.forgesim.webhooks import Delivery, github_signature

__all__ = [
    "BOT",
    "Delivery",
    "ForgeSim",
    "SimApp",
    "SimComment",
    "SimError",
    "SimIssue",
    "SimPR",
    "SimRepo",
    "SimReview",
    "SimStatus",
    "github_signature",
    "running",
]
