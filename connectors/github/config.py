"""GitHub: the connection's configuration parameters, validated when they are saved."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

__all__ = ["ALLOWED_PUBLIC_REPOS", "GithubConfig"]

ALLOWED_PUBLIC_REPOS = "allowed_public_repos"

_REPO = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/)?[A-Za-z0-9._-]{1,100}$")


def _repo_name(value: str) -> str:
    value = value.strip()
    if not _REPO.match(value):
        raise ValueError("must be a repository name (docs-site) or owner/name "
                         "(acme-corp/docs-site)")
    return value


RepoName = Annotated[str, AfterValidator(_repo_name)]
"""A repository name (`docs-site`) or owner/name (`acme-corp/docs-site`)."""


class GithubConfig(BaseModel):
    """What a GitHub connection may be configured with (the parameters of config_params).

    The SDK hands the validated instance to `repos.collect_public_repo_allowlist` (its `config`
    parameter); `repos.allowlist` compares names case-insensitively.
    """

    model_config = ConfigDict(extra="ignore")

    allowed_public_repos: list[RepoName] = Field(
        default_factory=list, max_length=10_000,
        description="Repositories meant to be public (names or owner/name).")

    @field_validator(ALLOWED_PUBLIC_REPOS, mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        """A comma or line separated string is a list; blanks between separators are skipped."""
        if value is None:
            return []
        if isinstance(value, str):
            return [item for item in value.replace("\n", ",").split(",") if item.strip()]
        return value
