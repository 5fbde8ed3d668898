"""The office's pages in English mode: every page renders, in English."""

from __future__ import annotations

from tests.web.conftest import Browser


def test_the_office_pages_read_in_english(office):
    checks = {
        "admin": {
            "/admin": "Administration",
            "/admin/users": "Add a user",
            "/admin/areas": "Area tree",
            "/admin/organisations": "Register a provider",
            "/admin/calendar": "Working-day calendar",
            "/admin/calendar/2027": "Enter or correct",
            "/admin/log": "Change log",
            "/admin/users/new": "Add a user",
            "/password": "Change password",
        },
        "facility_admin": {"/inbox": "Waitlist and beds"},
        "provider": {"/provider": "Sent back and cut"},
    }
    for username, pages in checks.items():
        person = Browser(office["app"], username)
        person.post("/language", {"lang": "en", "next": "/inbox"})
        try:
            for url, text in pages.items():
                response = person.get(url, follow_redirects=True)
                assert response.status_code == 200, (username, url)
                assert text in response.text, (username, url)
        finally:
            person.post("/language", {"lang": "zh", "next": "/inbox"})
