"""The care vocabulary the processes and the county's figures share (DOMAIN.md glossary)."""

# 六助 (seed 004 §三(二)), in the order forms and reports list them.
SIX_HELPS: dict[str, str] = {
    "meal": "助餐",
    "cleaning": "助洁",
    "bathing": "助浴",
    "mobility": "助行",
    "medical": "助医",
    "personal_care": "生活照料",
}

# Visit frequencies of visiting care, least to most frequent.
VISIT_FREQUENCIES: dict[str, str] = {
    "monthly": "每月至少探访1次",
    "fortnightly": "每两周至少探访1次",
    "weekly": "每周至少探访1次",
}
