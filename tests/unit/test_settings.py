"""config.toml: typed settings, defaults for whatever is bad, one line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.settings import MAX_CONFIG_BYTES, Settings, config_path, load_settings

ACTIONS = ("download", "cancel", "quit", "retry")


def _load(tmp_path: Path, text: str, **kwargs):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_settings(path, action_ids=kwargs.pop("action_ids", ACTIONS), **kwargs)


def test_path_follows_xdg_config_home(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_path() == tmp_path / "getfile" / "config.toml"


def test_no_file_means_defaults_and_no_problems(tmp_path: Path):
    loaded = load_settings(tmp_path / "absent.toml")
    assert loaded.settings == Settings() and loaded.problems == ()
    defaults = loaded.settings
    assert (defaults.port, defaults.retries, defaults.segments) == (50001, 10, 1)
    assert defaults.resume_on_start and defaults.notify_bell and defaults.notify_osc
    assert defaults.notify_after == 10.0 and defaults.rate_limit is None


def test_every_setting_is_read(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    loaded = _load(
        tmp_path,
        """
        destination = "~/Downloads"
        port = 6000
        rate_limit = "2M"
        retries = 0
        segments = 4
        resume_on_start = false
        theme = "nord"
        notify_after = 2.5

        [notifications]
        bell = false
        osc = true

        [keys]
        download = "f5"
        cancel = "ctrl+k,escape"
        """,
        themes=("nord", "textual-dark"),
    )
    assert loaded.problems == ()
    assert loaded.settings == Settings(
        destination=tmp_path / "Downloads",
        port=6000,
        rate_limit=2 * 1024 * 1024,
        retries=0,
        segments=4,
        resume_on_start=False,
        theme="nord",
        notify_bell=False,
        notify_osc=True,
        notify_after=2.5,
        keys={"download": "f5", "cancel": "ctrl+k,escape"},
    )


@pytest.mark.parametrize(
    ("text", "rate"), [("rate_limit = 65536", 65536.0), ("rate_limit = false", None)]
)
def test_rate_limit_as_number_or_none(tmp_path: Path, text: str, rate: float | None):
    assert _load(tmp_path, text).settings.rate_limit == rate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "port = 0",
            "config.toml line 2: port: must be a whole number from 1 to 65535; "
            "using the default (50001)",
        ),
        ('port = "50001"', "line 2: port: must be a whole number"),
        ("port = true", "line 2: port: must be a whole number"),
        ("retries = -1", "line 2: retries: must be a whole number from 0 to 1000"),
        ("segments = 99", "line 2: segments: must be a whole number from 1 to 16"),
        ('rate_limit = "fast"', "line 2: rate_limit: not a rate: 'fast'"),
        ("rate_limit = 0", "line 2: rate_limit: must be at least 1 byte"),
        ("rate_limit = nan", "line 2: rate_limit: must be at least 1 byte"),
        ("resume_on_start = 1", "line 2: resume_on_start: must be true or false"),
        ("notify_after = -3", "line 2: notify_after: must be from 0 to 86400 seconds"),
        ("notify_after = inf", "line 2: notify_after: must be from 0 to 86400"),
        ('destination = "relative/dir"', "line 2: destination: must be an absolute path"),
        ('destination = "/tmp/a\\u001b[2Jb"', "line 2: destination: has control characters"),
        ('theme = "no-such"', "line 2: theme: no such theme; using the default (none)"),
        ("colour = 'red'", "line 2: colour: unknown setting (ignored)"),
        ("notifications = 3", "line 2: notifications: must be a table"),
        ("[notifications]\nbell = 'yes'", "line 3: notifications.bell: must be true or false"),
        ("[notifications]\nsound = true", "line 3: notifications.sound: unknown setting"),
        ("[keys]\nexplode = 'f9'", "line 3: keys.explode: no such action (ignored)"),
        ("[keys]\ndownload = 'ctrl+'", "line 3: keys.download: not a key such as"),
        ("[keys]\ndownload = 5", "line 3: keys.download: not a key"),
        ("[keys]\ndownload = 'f5 f6'", "line 3: keys.download: not a key"),
        ("[keys]\ndownload = 'f5'\ncancel = 'f5'", "line 4: keys.cancel: 'f5' is already"),
        ("keys.download = 'bad key'", "line 2: keys.download: not a key"),
        ("[weird]\nx = 1", "line 2: weird: unknown setting (ignored)"),
    ],
)
def test_bad_value_is_one_line_naming_key_and_line(tmp_path: Path, text: str, expected: str):
    loaded = _load(tmp_path, f"# getfile-tui settings\n{text}\n", themes=("nord",))
    (problem,) = loaded.problems
    assert expected in problem and "\n" not in problem


def test_bad_values_keep_their_defaults_and_the_rest(tmp_path: Path):
    loaded = _load(tmp_path, 'port = 0\nretries = 2\nsegments = "x"\n[keys]\nquit = "f10"\n')
    assert len(loaded.problems) == 2
    assert loaded.settings.port == 50001 and loaded.settings.segments == 1
    assert loaded.settings.retries == 2 and loaded.settings.keys == {"quit": "f10"}


def test_syntax_error_gives_tomllibs_line_and_all_defaults(tmp_path: Path):
    loaded = _load(tmp_path, "retries = 3\nport 50001\n")
    (problem,) = loaded.problems
    assert problem.startswith("config.toml: ") and "line 2" in problem
    assert problem.endswith("using defaults")
    assert loaded.settings == Settings()


def test_unreadable_huge_or_binary_file_gives_defaults(tmp_path: Path):
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as stream:
        stream.truncate(MAX_CONFIG_BYTES + 1)
    assert "larger than" in load_settings(huge).problems[0]
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"port = \xff\n")
    assert "not UTF-8" in load_settings(binary).problems[0]
    assert "cannot read" in load_settings(tmp_path).problems[0]  # a folder


def test_any_action_id_accepted_when_no_list_is_given(tmp_path: Path):
    loaded = _load(tmp_path, "[keys]\nsomething_new = 'ctrl+shift+x'\n", action_ids=None)
    assert loaded.settings.keys == {"something_new": "ctrl+shift+x"}


def test_hostile_key_names_are_shown_safely(tmp_path: Path):
    loaded = _load(tmp_path, '"evil\\u001b]0;x\\u0007" = 1\n')
    (problem,) = loaded.problems
    assert "\x1b" not in problem and "\x07" not in problem


@settings(deadline=None)  # no timing assertions: the machine is shared
@given(st.text(max_size=200))
def test_any_text_loads_with_problems_never_an_exception(text: str):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        loaded = load_settings(path, action_ids=ACTIONS)
    assert isinstance(loaded.settings, Settings)
    assert all("\n" not in problem for problem in loaded.problems)
