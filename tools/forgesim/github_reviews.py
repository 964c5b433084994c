"""Pull request reviews on the simulated GitHub: approve, request changes, comment.

GitHub's REST endpoints and shapes (``pull-request-review`` in GitHub's OpenAPI description):
``POST /repos/{o}/{r}/pulls/{n}/reviews`` (answers **200**, not 201), ``GET .../reviews`` (oldest
first, paginated) and ``GET .../reviews/{id}``. Kept apart from :mod:`github_api` so reviews can be
added without touching the shapes of everything else.

Rules GitHub enforces that the simulator keeps: nobody approves (or requests changes on) their own
pull request; ``REQUEST_CHANGES`` and ``COMMENT`` need a body; leaving ``event`` out starts a
``PENDING`` review, visible only to its author, one per user and pull request. Errors use GitHub's
``validation-error-simple`` shape (``errors`` is a list of strings).

No webhook is sent: Mergeway's webhook subscribes to pull requests and issue comments only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tools.forgesim.api import ApiError, ApiRequest, ApiResponse, paginate
from tools.forgesim.state import SimPR, iso, now

if TYPE_CHECKING:
    from tools.forgesim.github_api import GitHubAPI

DOCS = "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request"
#: The ``event`` a client sends → the ``state`` GitHub stores.
EVENTS = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}


@dataclass
class SimReview:
    id: int
    pr: SimPR
    user: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, PENDING
    body: str
    commit_id: str
    submitted_at: float | None = field(default_factory=now)


def unprocessable(*errors: str) -> ApiError:
    """GitHub's 422 for reviews: ``message`` plus ``errors`` as plain strings."""
    return ApiError(422, {"message": "Unprocessable Entity", "errors": list(errors), "documentation_url": DOCS})


def check_review(pr: SimPR, user: str, event: str | None, body: str, pending: bool) -> str:
    """The state a new review by ``user`` gets, or the 422 GitHub answers instead."""
    if event is not None and event not in EVENTS:
        raise ApiError(
            422,
            {
                "message": "Validation Failed",
                "errors": [f"event must be one of {', '.join(EVENTS)}"],
                "documentation_url": DOCS,
            },
        )
    if user == pr.author and event == "APPROVE":
        raise unprocessable("Can not approve your own pull request")
    if user == pr.author and event == "REQUEST_CHANGES":
        raise unprocessable("Can not request changes on your own pull request")
    if event in ("REQUEST_CHANGES", "COMMENT") and not body.strip():
        raise unprocessable(f"Body is required when the event is {event}")  # wording: the simulator's own
    if event is None and pending:
        raise unprocessable("User can only have one pending review per pull request")
    return EVENTS[event] if event else "PENDING"


class ReviewsAPI:
    """The review endpoints, registered on :class:`GitHubAPI`'s router."""

    def __init__(self, api: GitHubAPI) -> None:
        self.api = api
        self.sim = api.sim
        r = "/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
        api.router.add("GET", rf"{r}/pulls/(?P<number>\d+)/reviews", self.list_reviews)
        api.router.add("POST", rf"{r}/pulls/(?P<number>\d+)/reviews", self.create_review)
        api.router.add("GET", rf"{r}/pulls/(?P<number>\d+)/reviews/(?P<rid>\d+)", self.get_review)

    def review_json(self, review: SimReview, api: str, web: str) -> dict[str, Any]:
        repo = review.pr.repo
        pr_url = f"{api}/repos/{repo.full_name}/pulls/{review.pr.number}"
        html = f"{repo.web_url}/pull/{review.pr.number}#pullrequestreview-{review.id}"
        data: dict[str, Any] = {
            "id": review.id,
            "node_id": f"PRR_{review.id}",
            "user": self.api.user_json(review.user, api, web),
            "body": review.body,
            "state": review.state,
            "html_url": html,
            "pull_request_url": pr_url,
            "_links": {"html": {"href": html}, "pull_request": {"href": pr_url}},
            "commit_id": review.commit_id,
            "author_association": self._association(review),
        }
        if review.submitted_at is not None:  # a pending review has not been submitted
            data["submitted_at"] = iso(review.submitted_at)
        return data

    @staticmethod
    def _association(review: SimReview) -> str:
        repo = review.pr.repo
        if review.user == repo.owner:
            return "OWNER"
        return "COLLABORATOR" if review.user in repo.members else "NONE"

    def _visible(self, pr: SimPR, viewer: str) -> list[SimReview]:
        """Oldest first; a pending review only for its author, as on GitHub."""
        return [r for r in self.sim.reviews if r.pr is pr and (r.state != "PENDING" or r.user == viewer)]

    def list_reviews(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._repo(req)
        pr = self.api._pr(repo, req.match["number"])
        page = paginate(req, self._visible(pr, self.api.actor(req.principal)), default_per_page=30)
        page.body = [self.review_json(r, req.api_base, req.web_base) for r in page.body]
        return page

    def get_review(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._repo(req)
        pr = self.api._pr(repo, req.match["number"])
        rid = int(req.match["rid"])
        found = [r for r in self._visible(pr, self.api.actor(req.principal)) if r.id == rid]
        if not found:
            raise ApiError(404, {"message": "Not Found", "documentation_url": DOCS})
        return ApiResponse(200, self.review_json(found[0], req.api_base, req.web_base))

    def create_review(self, req: ApiRequest) -> ApiResponse:
        repo = self.api._repo(req)
        pr = self.api._pr(repo, req.match["number"])
        body = req.json if isinstance(req.json, dict) else {}
        event = body.get("event")
        commit_id = str(body.get("commit_id") or pr.head_sha)
        if repo.git.commit_info(commit_id) is None:
            raise unprocessable(f"No commit found for SHA: {commit_id}")
        review = self.sim.core_add_review(
            pr,
            self.api.actor(req.principal),
            str(event) if event is not None else None,
            str(body.get("body") or ""),
            commit_id,
        )
        return ApiResponse(200, self.review_json(review, req.api_base, req.web_base))
