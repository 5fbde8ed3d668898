"""Where an instance keeps its files and which database it uses, from the environment."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def instance_dir() -> Path:
    """Return the instance folder (SQLite file, uploads, keys), creating it on first use."""
    path = Path(os.environ.get("ELDERCARE_INSTANCE", "instance")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """Return DATABASE_URL, or an SQLite file inside the instance folder."""
    url = os.environ.get("DATABASE_URL")
    if url:
        # Accept the common postgres:// spelling and pick the psycopg 3 driver.
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return url
    return f"sqlite:///{instance_dir() / 'eldercare.sqlite'}"


def bpmn_dir() -> Path:
    """Return the folder holding the shipped process definitions."""
    return Path(os.environ.get("ELDERCARE_BPMN_DIR", REPO_ROOT / "bpmn"))


def clock_file() -> Path | None:
    """ELDERCARE_CLOCK_FILE: for acceptance tests only, a file holding how far this instance's clock is
    moved from real time (`eldercare clock`); unset in production, where the clock is the system's."""
    path = os.environ.get("ELDERCARE_CLOCK_FILE")
    return Path(path).resolve() if path else None
