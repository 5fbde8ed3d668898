"""Adding administrative areas: the level and the parent follow from the code."""

import pytest

from workflows import areas
from workflows.errors import RegistryError
from workflows.models import AreaLevel


def test_areas_are_added_parents_first(session):
    county = areas.add_area(session, "410825", "温县")
    township = areas.add_area(session, " 410825100 ", "祥云镇")
    village = areas.add_area(session, "410825100201", "祥云村")
    assert (county.level, county.parent_code) == (AreaLevel.COUNTY, None)
    assert (township.level, township.parent_code) == (AreaLevel.TOWNSHIP, "410825")
    assert (village.level, village.parent_code) == (AreaLevel.VILLAGE, "410825100")
    assert [a.code for a in areas.list_areas(session)] == ["410825", "410825100", "410825100201"]


@pytest.mark.parametrize(
    ("code", "name", "field", "message"),
    [
        ("41082", "某县", "code", "行政区划代码应为6位（县）、9位（乡镇）或12位（村）数字"),
        ("４１０８２６", "全角", "code", "行政区划代码应为6位（县）、9位（乡镇）或12位（村）数字"),
        ("410825", "温县", "code", "行政区划代码 410825 已存在"),
        ("410826100", "别县某镇", "code", "上级区划 410826 不存在，请先添加"),
        ("410825101", "", "name", "请填写区划名称（最多64个字）"),
    ],
)
def test_bad_areas_are_refused_naming_the_field(session, code, name, field, message):
    areas.add_area(session, "410825", "温县")
    with pytest.raises(RegistryError) as refused:
        areas.add_area(session, code, name)
    assert refused.value.field_errors[field] == message
