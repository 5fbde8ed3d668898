"""The 六助 of purchased home care (seed 004 §三(二)): what a provider offers and an elder applies for."""

# In the order forms and reports list them.
SIX_HELPS: dict[str, str] = {
    "meal": "助餐",
    "cleaning": "助洁",
    "bathing": "助浴",
    "mobility": "助行",
    "medical": "助医",
    "personal_care": "生活照料",
}
