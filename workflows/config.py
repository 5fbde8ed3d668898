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
