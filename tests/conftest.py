from __future__ import annotations

import functools
import os
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

DEFAULT_TEST_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# Services started by tests stop at once: no load balancer polls their health.
# The drain test (tests/e2e/test_shutdown_drain.py) sets its own window.
os.environ.setdefault("VP_DRAIN_WINDOW_SECONDS", "0")


@functools.cache
def _postgres_admin() -> sa.Engine | str:
    """An engine on the test PostgreSQL server, shared by the whole run, or why there is none."""
    url = make_url(os.environ.get("VP_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL))
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3}, poolclass=sa.pool.NullPool)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        engine.dispose()
        return f"PostgreSQL at {url.render_as_string()} is unreachable: {error.orig}"
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], ids=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """A fresh, empty database URL per test, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    admin = _postgres_admin()
    if isinstance(admin, str):
        if os.environ.get("CI"):
            pytest.fail(f"{admin} (CI must not skip PostgreSQL tests)")
        pytest.skip(f"{admin}; start it or point VP_TEST_POSTGRES_URL elsewhere")
    schema = f"t_{uuid.uuid4().hex}"
    with admin.begin() as conn:
        conn.execute(sa.schema.CreateSchema(schema))
    # libpq options select the schema for every connection the code under test opens.
    url = admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True))


@pytest.fixture
def sqlite_url(tmp_path):
    """A fresh SQLite database file URL."""
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(autouse=True, scope="session")
def _no_ambient_credentials(tmp_path_factory):
    """Clients resolve credentials from VP_TLS_* or a data dir (.vp by default): a
    developer's own .vp must not leak into tests, so point the data dir at an empty one."""
    saved = {key: os.environ.pop(key) for key in ("VP_TLS_CA", "VP_TLS_CLIENT_CERT", "VP_TLS_CLIENT_KEY",
                                                  "VP_TOKEN_FILE", "VP_INSECURE") if key in os.environ}
    previous = os.environ.get("VP_DATA_DIR")
    os.environ["VP_DATA_DIR"] = str(tmp_path_factory.mktemp("no-credentials") / "absent")
    yield
    os.environ.update(saved)
    if previous is None:
        os.environ.pop("VP_DATA_DIR", None)
    else:
        os.environ["VP_DATA_DIR"] = previous
