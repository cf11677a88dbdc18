"""A new session's workspace must be a normalized directory under the
configured root, never "/": the host-file-read attack starts here."""

from __future__ import annotations

import pytest

from services.registry.workspaces import normalized_root, workspace_violations

ROOT = "/srv/vp/workspaces"


@pytest.mark.parametrize("value", ["/srv/vp/workspaces/vp.coder.primary", "/srv/vp/workspaces/a/b"])
def test_directories_under_the_root_are_accepted(value):
    assert workspace_violations(value, ROOT) == []


@pytest.mark.parametrize("value", [
    "/", "//", "/etc", "relative/dir", "/srv/vp/workspaces", "/srv/vp/workspaces/../../etc",
    "/srv/vp/workspaces/./x", "/srv/vp/workspaces/x/", "/srv/vp/workspacesX/y", "//srv/vp/workspaces/x",
    "/srv/vp/workspaces/" + "x" * 5000,
])
def test_everything_else_is_refused(value):
    assert workspace_violations(value, ROOT), value


def test_without_a_root_the_filesystem_root_is_still_refused():
    assert workspace_violations("/", None)
    assert workspace_violations("/a/../b", None)
    assert workspace_violations("/srv/x", None) == []


def test_the_root_itself_may_not_be_the_filesystem_root(tmp_path):
    with pytest.raises(ValueError):
        normalized_root("/")
    assert normalized_root(str(tmp_path / "a" / ".." / "b")) == str(tmp_path / "b")
