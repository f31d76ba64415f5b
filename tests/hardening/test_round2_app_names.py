"""A file name that is Textual markup, in the overwrite dialog and on a transfer row (issue 10 #1).

``tests/tui/test_hostile_text.py`` covers the server's messages and the
remote browser; this covers the other two places the issue names: the
dialog that shows a taken name (``Label``s, markup on before the fix: ``[a=b c=d]``
raised ``MarkupError``), and the transfer row of a file downloaded under
such a name, where a click on ``[@click=app.quit]…`` must not run the action.
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Label

from getfile_core.server.fileserver import FileServer, ServerLimits
from tests.support.tui import make_app, only_transfer, pilot_wait_until
from tui.screens.overwrite import OverwriteScreen
from tui.widgets.transfer_list import fit_name

SIZE = (100, 24)
NAME = "[@click=app.quit][a=b c=d]report.txt"
RENAMED = "[@click=app.quit][a=b c=d]report (1).txt"


async def test_a_markup_name_in_the_dialog_and_on_its_row_is_only_text(
    tmp_path: Path, dest: Path
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / NAME).write_bytes(b"the server's copy\n")
    (dest / NAME).write_bytes(b"mine\n")  # taken: the dialog shows the name
    server = FileServer(served, "127.0.0.1", 0, limits=ServerLimits(grace=1), on_access=None)
    await server.start()
    try:
        app = make_app(host="127.0.0.1", port=server.port_bound, file=NAME, dest=dest)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter")
            await pilot_wait_until(
                pilot, lambda: isinstance(app.screen, OverwriteScreen), what="dialog"
            )
            texts = [str(label.content) for label in app.screen.query(Label)]
            assert any(text.startswith(f"{NAME} already exists") for text in texts), texts
            assert f"Rename saves it as {RENAMED}" in texts
            await pilot.press("n")
            await pilot_wait_until(
                pilot, lambda: app.transfers and only_transfer(app).state == "done"
            )
            row = app.transfer_list.row(only_transfer(app).id)
            assert row is not None
            cell = row.cell("name")
            await pilot_wait_until(pilot, lambda: cell.full_text == RENAMED, what="the row's name")
            # Fitted to its 15 columns (its middle gives way), and shown as the text it is.
            assert str(cell.content) == fit_name(RENAMED, cell.size.width)
            assert str(cell.content).startswith("[@click")  # a name, not a link
            await pilot.click(cell)  # a link in the name would quit here
            await pilot.pause()
            assert app.is_running
    finally:
        await server.stop(grace=1)
    assert (dest / RENAMED).read_bytes() == b"the server's copy\n"
    assert (dest / NAME).read_bytes() == b"mine\n"
