"""The restricted runtime refuses what the deploy check would, and harms nothing when it does."""

import os

import pytest

from workflows import engine
from workflows.engine.sandbox import Sandbox, SandboxError
from workflows.engine.scripting import check_script

RUNTIME = Sandbox()

ATTACKS = [
    "import os",
    "x = ().__class__.__bases__[0].__subclasses__()",
    "f = open('/tmp/owned', 'w')",
    "__import__('os').system('touch /tmp/owned')",
    "y = getattr(data, '__class__')",
    "exec('import os')",
]


@pytest.mark.parametrize("script", ATTACKS)
def test_runtime_refuses_scripts_that_reach_outside(script, tmp_path):
    marker = "/tmp/owned"
    if os.path.exists(marker):
        os.remove(marker)
    context = {"data": {"a": 1}}
    with pytest.raises((engine.ScriptError, SandboxError)):
        RUNTIME.execute(script, context)
    assert not os.path.exists(marker)


def test_allowed_scripts_compute_with_helpers():
    context = {"items": [{"qty": 2, "price": 15}, {"qty": 1, "price": 30}], "n": 1}
    RUNTIME.execute("total = sum(i['qty'] * i['price'] for i in items)", context)
    RUNTIME.execute("n += 1", context)
    RUNTIME.execute("amount = Decimal('12.50') * 2", context)
    assert context["total"] == 60 and context["n"] == 2 and str(context["amount"]) == "25.00"
    assert RUNTIME.evaluate("total > 50 and n == 2", context) is True


def test_registered_helper_is_callable_from_scripts():
    runtime = Sandbox(helpers={"double_it": lambda x: 2 * x})
    context = {"x": 21}
    runtime.execute("y = double_it(x)", context)
    assert context["y"] == 42 and "double_it" not in context  # helpers never leak into case data


def test_check_script_explains_in_chinese():
    assert "不允许导入模块" in check_script("import os")
    assert "语法错误" in check_script("x = = 1")
    assert check_script("x = 1 + 2") is None
