"""PathPolicy.check_target_path: the target_path rules."""

from __future__ import annotations

import os

import pytest

from services.common.errors import PathNotAllowed
from services.common.guardrails import PathPolicy


@pytest.fixture
def roots(tmp_path):
    allowed = tmp_path / "allowed"
    protected = allowed / "protected"
    outside = tmp_path / "outside"
    for d in (allowed, protected, outside):
        d.mkdir()
    return allowed, protected, outside


@pytest.fixture
def policy(roots):
    allowed, protected, _ = roots
    return PathPolicy(allowed_roots=(allowed,), protected_roots=(protected,))


def refused(policy: PathPolicy, path: str) -> PathNotAllowed:
    with pytest.raises(PathNotAllowed) as info:
        policy.check_target_path(path)
    err = info.value
    assert err.metadata["target_path"] == path
    assert err.reason == "PATH_NOT_ALLOWED"
    return err


def test_allowed_paths(policy, roots):
    allowed, _, _ = roots
    real = allowed.resolve()
    assert policy.check_target_path(str(allowed / "out" / "new.md")) == real / "out" / "new.md"
    assert policy.check_target_path(str(allowed)) == real
    assert policy.check_target_path(str(allowed / "protected-not" / "x")) == real / "protected-not" / "x"


def test_empty_path_means_no_target(policy):
    assert policy.check_target_path("") is None


def test_outside_every_allowed_root(policy, roots):
    _, _, outside = roots
    assert refused(policy, str(outside / "x")).metadata["rule"] == "outside_allowed_roots"
    assert refused(policy, "/etc/passwd").metadata["rule"] == "outside_allowed_roots"


def test_protected_inside_allowed_is_refused(policy, roots):
    _, protected, _ = roots
    err = refused(policy, str(protected / "deep" / "file"))
    assert err.metadata["rule"] == "protected_root"
    assert "protected" in err.message
    assert refused(policy, str(protected)).metadata["rule"] == "protected_root"


def test_parent_components_refused_even_if_they_stay_inside(policy, roots):
    allowed, _, _ = roots
    assert refused(policy, str(allowed / "a" / ".." / "b")).metadata["rule"] == "parent_reference"
    assert refused(policy, str(allowed) + "/../outside").metadata["rule"] == "parent_reference"


def test_relative_paths_refused(policy):
    for path in ("relative/file", "./file", "~/file"):
        assert refused(policy, path).metadata["rule"] == "not_absolute"


def test_symlink_escaping_an_allowed_root_is_refused(policy, roots):
    allowed, protected, outside = roots
    os.symlink(outside, allowed / "link-out")
    err = refused(policy, str(allowed / "link-out" / "new.md"))
    assert err.metadata["rule"] == "outside_allowed_roots"
    # a symlink inside allowed pointing into the protected root
    os.symlink(protected, allowed / "link-protected")
    assert refused(policy, str(allowed / "link-protected" / "x")).metadata["rule"] == "protected_root"
    # a dangling symlink whose target is outside: writing through it would escape
    os.symlink(outside / "not-yet", allowed / "dangling")
    assert refused(policy, str(allowed / "dangling")).metadata["rule"] == "outside_allowed_roots"


def test_symlink_staying_inside_is_fine(policy, roots):
    allowed, _, _ = roots
    (allowed / "real").mkdir()
    os.symlink(allowed / "real", allowed / "alias")
    assert policy.check_target_path(str(allowed / "alias" / "f")) == (allowed / "real" / "f").resolve()


def test_no_allowed_roots_refuses_everything(roots):
    allowed, _, _ = roots
    err = refused(PathPolicy(), str(allowed / "x"))
    assert err.metadata["rule"] == "no_allowed_roots"


def test_policy_roots_must_be_absolute():
    with pytest.raises(ValueError):
        PathPolicy(allowed_roots=("relative",))
    policy = PathPolicy(allowed_roots=["/srv"], protected_roots=["/srv/secret"])
    assert isinstance(policy.allowed_roots, tuple)
