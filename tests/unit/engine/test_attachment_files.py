"""An uploaded file lives exactly as long as its database row: a rolled-back upload leaves no file."""

from workflows import attachments, cases

from .conftest import TOWNSHIP

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _files(root):
    return sorted(p.name for p in root.rglob("*") if p.is_file())


def test_a_rolled_back_upload_leaves_no_file(session, deployed, tmp_path):
    caseworker = deployed["caseworker"]
    case = cases.start_case(session, caseworker, "order_product", area_code=TOWNSHIP)
    session.commit()
    attachments.save_attachment(session, caseworker, case.id, "照片.png", PNG, root=tmp_path)
    assert len(_files(tmp_path)) == 1
    session.rollback()  # e.g. another field of the same form was refused
    assert _files(tmp_path) == []


def test_a_committed_upload_keeps_its_file(session, deployed, tmp_path):
    caseworker = deployed["caseworker"]
    case = cases.start_case(session, caseworker, "order_product", area_code=TOWNSHIP)
    saved = attachments.save_attachment(session, caseworker, case.id, "照片.png", PNG, root=tmp_path)
    session.commit()
    session.rollback()  # a later rollback does not touch what was committed
    assert _files(tmp_path) == [saved.stored_name]
    stored = attachments.open_attachment(session, caseworker, saved.id, root=tmp_path)
    assert stored.path.read_bytes() == PNG
