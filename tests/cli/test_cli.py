"""The `eldercare` command end to end on a fresh instance folder (SQLite file, real processes)."""

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main

ENGINE_BPMN = Path(__file__).resolve().parents[1] / "unit" / "engine" / "bpmn"


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.setenv("ELDERCARE_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("ELDERCARE_BPMN_DIR", str(ENGINE_BPMN))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()
    result = runner.invoke(main, ["init-db"])
    assert result.exit_code == 0, result.output
    return tmp_path, runner


def test_init_db_deploys_and_is_repeatable(instance):
    tmp_path, runner = instance
    assert (tmp_path / "instance" / "eldercare.sqlite").exists()
    again = runner.invoke(main, ["init-db"])
    assert again.exit_code == 0 and "已是最新" in again.output


def test_deploy_reports_versions_and_refuses_bad_files(instance, tmp_path):
    _, runner = instance
    changed = tmp_path / "loop.bpmn"
    changed.write_text(
        (ENGINE_BPMN / "loop.bpmn").read_text(encoding="utf-8").replace('name="完成"', 'name="办结"'),
        encoding="utf-8",
    )
    result = runner.invoke(main, ["deploy", str(changed)])
    assert result.exit_code == 0 and "runaway_loop: 第2版（新部署）" in result.output
    bad = tmp_path / "bad.bpmn"
    bad.write_text(
        (ENGINE_BPMN / "loop.bpmn").read_text(encoding="utf-8").replace("n = n + 1", "import os"),
        encoding="utf-8",
    )
    result = runner.invoke(main, ["deploy", str(bad)])
    assert result.exit_code == 1 and "[count" in result.output and "不允许导入模块" in result.output


def test_deploy_refuses_what_it_cannot_run_with_a_clear_reason_and_exit_code(instance, tmp_path):
    _, runner = instance
    loop = (ENGINE_BPMN / "loop.bpmn").read_text(encoding="utf-8")
    drawing = tmp_path / "drawing.bpmn"
    drawing.write_text(loop.replace('isExecutable="true"', 'isExecutable="false"'), encoding="utf-8")
    result = runner.invoke(main, ["deploy", str(drawing)])
    assert result.exit_code == 1 and "没有可执行的流程（runaway_loop" in result.output
    utf16 = tmp_path / "utf16.bpmn"
    utf16.write_bytes(loop.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
    result = runner.invoke(main, ["deploy", str(utf16)])
    assert result.exit_code == 1 and "像是 UTF-16" in result.output and "Traceback" not in result.output


def test_message_command_reaches_waiting_cases(instance):
    _, runner = instance
    from sqlalchemy import select

    from workflows import cases
    from workflows.db import make_engine, session_factory
    from workflows.models import Area, AreaLevel

    make = session_factory(make_engine())
    with make.begin() as s:
        s.add(Area(code="410825", name="温县", level=AreaLevel.COUNTY))
        s.flush()
        case_id = cases.start_case(
            s, None, "wait_for_bed", area_code="410825", elder_id=5, data={"elder_id": 5}
        ).id
    result = runner.invoke(main, ["message", "bed_vacated", "--payload", '{"bed": "A-1"}', "--elder", "5"])
    assert result.exit_code == 0 and f"已送达 1 个案件：[{case_id}]" in result.output
    assert "没有案件在等待" in runner.invoke(main, ["message", "bed_vacated"]).output
    bad = runner.invoke(main, ["message", "bed_vacated", "--payload", "{oops"])
    assert bad.exit_code != 0 and "不是有效的 JSON" in bad.output
    not_object = runner.invoke(main, ["message", "bed_vacated", "--payload", "[1]"])
    assert not_object.exit_code != 0 and "应为 JSON 对象" in not_object.output
    no_such_case = runner.invoke(main, ["message", "bed_vacated", "--case", str(2**70)])
    assert no_such_case.exit_code != 0 and "Traceback" not in no_such_case.output
    with make() as s:
        assert s.scalar(select(cases.Case.current_step).where(cases.Case.id == case_id)) == "确认入住"


def test_import_and_match_commands(instance, tmp_path):
    _, runner = instance
    from workflows.db import make_engine, session_factory
    from workflows.demo import load_demo_registry

    make = session_factory(make_engine())
    with make.begin() as s:
        load_demo_registry(s, "demo-password")
    roster = tmp_path / "名册.csv"
    with roster.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["姓名", "身份证号", "联系电话", "户籍类型", "居住村(社区)", "详细地址", "居住状况", "低保"]
        )
        w.writerow(
            [
                "王秀英",
                "410825194001010020",
                "13812345678",
                "农村",
                "410825100201",
                "一组",
                "与配偶同住",
                "是",
            ]
        )
        w.writerow(
            [
                "李建国",
                "410825194001010027",
                "13812345679",
                "农村",
                "410825100201",
                "二组",
                "与配偶同住",
                "否",
            ]
        )
    result = runner.invoke(main, ["import", "elders", str(roster)])
    assert result.exit_code == 1 and "第3行" in result.output and "未导入任何数据" in result.output
    result = runner.invoke(main, ["import", "elders", str(roster), "--skip-bad"])
    assert result.exit_code == 0 and "导入 1 行" in result.output
    report = next(tmp_path.glob("*问题报告.csv"))
    assert "校验" in report.read_text(encoding="utf-8-sig")

    result = runner.invoke(main, ["match", "410825194001010020", "--on", "2025-06-01"])
    assert result.exit_code == 0, result.output
    assert "王秀英" in result.output and "温县" in result.output and "符合条件的项目" in result.output
    missing = runner.invoke(main, ["match", "11010519491231002X"])
    assert missing.exit_code != 0 and "没有身份证号" in missing.output


def test_bench_roster_quick_prints_json(instance):
    _, runner = instance
    result = runner.invoke(main, ["bench", "roster", "--quick"])
    assert result.exit_code == 0
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["imported"] == 1000 and figures["problems"] == 0


def test_a_county_is_set_up_without_demo_data(instance):
    # A real deployment: areas parents first, then users; a locked or departed user is handled from here.
    from workflows import users
    from workflows.db import make_engine, session_factory
    from workflows.errors import LoginRefused

    _, runner = instance
    for code, name in (("410825", "温县"), ("410825100", "祥云镇"), ("410825100201", "祥云村")):
        result = runner.invoke(main, ["area", "add", code, name])
        assert result.exit_code == 0 and f"{code} {name}" in result.output, result.output
    orphan = runner.invoke(main, ["area", "add", "410826100", "别县某镇"])
    assert orphan.exit_code == 1 and "上级区划 410826 不存在，请先添加" in orphan.output
    assert (
        "应为6位（县）、9位（乡镇）或12位（村）数字"
        in runner.invoke(main, ["area", "add", "4108", "x"]).output
    )
    assert "    410825100201 祥云村" in runner.invoke(main, ["area", "list"]).output

    add = [
        "user",
        "add",
        "wang.jh",
        "--name",
        "王建华（祥云镇经办人）",
        "--role",
        "caseworker",
        "--area",
        "410825100",
    ]
    result = runner.invoke(main, add, input="secret-123\nsecret-123\n")
    assert result.exit_code == 0 and "已添加用户 wang.jh" in result.output, result.output
    again = runner.invoke(main, add, input="secret-123\nsecret-123\n")
    assert again.exit_code == 1 and "用户名 wang.jh 已被使用" in again.output
    short = runner.invoke(main, ["user", "password", "wang.jh"], input="short\nshort\n")
    assert short.exit_code == 1 and "密码至少8位" in short.output

    make = session_factory(make_engine())
    with make.begin() as session:
        assert users.authenticate(session, "wang.jh", "secret-123").username == "wang.jh"
        for _ in range(users.MAX_FAILED_LOGINS):
            with pytest.raises(LoginRefused):
                users.authenticate(session, "wang.jh", "guess")
    assert "锁定" in runner.invoke(main, ["user", "list"]).output
    assert "已解除 wang.jh 的登录锁定" in runner.invoke(main, ["user", "unlock", "wang.jh"]).output
    changed = runner.invoke(main, ["user", "password", "wang.jh"], input="secret-456\nsecret-456\n")
    assert changed.exit_code == 0 and "已为 wang.jh 设置新密码" in changed.output
    with make.begin() as session:
        assert users.authenticate(session, "wang.jh", "secret-456").username == "wang.jh"
    assert "已停用 wang.jh" in runner.invoke(main, ["user", "disable", "wang.jh"]).output
    with make.begin() as session, pytest.raises(LoginRefused):
        users.authenticate(session, "wang.jh", "secret-456")
    listing = runner.invoke(main, ["user", "list"]).output
    assert "wang.jh" in listing and "停用" in listing
    missing = runner.invoke(main, ["user", "unlock", "nobody"])
    assert missing.exit_code == 1 and "用户 nobody 不存在" in missing.output
