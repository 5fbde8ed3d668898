"""The office's commands: the working-day calendar kept from the server, users through the same use cases
as the pages; the roster import's progress line never runs into its summary."""

import re

from click.testing import CliRunner

from cli import main
from tests.cli.test_cli import instance  # noqa: F401 - the fixture: a fresh instance folder


def test_a_year_is_entered_shown_and_listed_and_a_wrong_file_refused(instance, tmp_path):  # noqa: F811
    _, runner = instance
    plan = tmp_path / "2031.txt"
    plan.write_text(
        "# 测试数据\n2031-01-01 休 元旦\n2031-01-22~2031-01-28 休 春节\n2031-01-19 班 春节\n",
        encoding="utf-8",
    )
    result = runner.invoke(main, ["calendar", "set", "2031", str(plan), "--notice", "测试通知"])
    assert result.exit_code == 0 and "已录入 2031 年：9 天；0 项期限重新计算" in result.output, result.output
    shown = runner.invoke(main, ["calendar", "show", "2031"])
    assert "2031-01-22~2031-01-28 休 春节" in shown.output and "2031-01-19 班 春节" in shown.output
    assert "2031  本县录入" in runner.invoke(main, ["calendar", "list"]).output
    again = runner.invoke(main, ["calendar", "set", "2031", str(plan)])
    assert "已更正 2031 年" in again.output
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("2031-01-22 班 春节\n", encoding="utf-8")
    refused = runner.invoke(main, ["calendar", "set", "2031", str(wrong)])
    assert refused.exit_code == 1 and "不需要登记为调休上班" in refused.output
    assert runner.invoke(main, ["calendar", "show", "2099"]).exit_code == 1


def test_the_roster_progress_ends_its_line_before_the_summary(instance, tmp_path):  # noqa: F811
    _, runner = instance
    for code, name in (("410825", "温县"), ("410825100", "祥云镇"), ("410825100201", "祥云村")):
        runner.invoke(main, ["area", "add", code, name])
    result = CliRunner().invoke(
        main,
        ["user", "add", "importer", "--name", "导入员", "--role", "admin", "--area", "410825"],
        env={"ELDERCARE_NEW_PASSWORD": "import-123"},
    )
    assert result.exit_code == 0, result.output
    roster = tmp_path / "名册.csv"
    roster.write_text(
        "姓名,身份证号,户籍类型,居住村(社区),居住状况\n"
        "王秀英,410825194001010020,农村,410825100201,与配偶同住\n"
        "李建国,410825194001010027,农村,410825100201,与配偶同住\n",
        encoding="utf-8-sig",
    )
    result = runner.invoke(main, ["import", "elders", str(roster), "--as", "importer"])
    assert "\r" not in result.output
    lines = result.output.splitlines()
    assert "已检查 2/2 行" in lines
    summary = next(line for line in lines if "共 2 行" in line)
    assert summary.startswith("共 2 行") and "已检查" not in summary
    assert re.search(r"^共 2 行，导入 0 行，问题 \d+ 个$", summary)
