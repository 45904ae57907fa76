"""The Windows and macOS build scripts, checked here without those systems.

- installer/windows/build.ps1, read by a small PowerShell lexer (comments, the four kinds of
  string, subexpressions): free of what breaks it under Windows PowerShell 5.1 with
  ``$ErrorActionPreference = 'Stop'`` (stderr redirection, native programs run outside the
  functions that judge them by exit status, double quotes inside native arguments, -c code);
  its Python helper, installer/windows/buildenv.py, run for real; the Inno Setup version it
  asks for matches easel.iss's guard.
- installer/easel.spec, run with stand-ins for PyInstaller's build targets as on macOS: the
  Info.plist the BUNDLE would write (PyInstaller's rule: a COLLECT whose last executable is a
  console one makes the app LSBackgroundOnly, unless info_plist says otherwise).
- installer/macos/build.sh: its Info.plist check, run on made-up apps; the signing,
  notarisation and headless-start steps it must hold.
- README.md: the names it gives match what the scripts and the app's QSettings produce.
"""

from __future__ import annotations

import dataclasses
import plistlib
import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALLER = ROOT / "installer"
BUILD_PS1 = INSTALLER / "windows" / "build.ps1"
EASEL_ISS = INSTALLER / "windows" / "easel.iss"
BUILD_SH = INSTALLER / "macos" / "build.sh"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


# ------------------------------------------------------------------ a PowerShell lexer

@dataclasses.dataclass
class Literal:
    kind: str   # single, double, here-single, here-double
    raw: str    # the text between the quotes, escapes as written
    line: int

    def holds_double_quote(self) -> bool:
        if self.kind == "single":
            return '"' in self.raw
        if self.kind == "double":
            return '`"' in self.raw or '""' in self.raw
        return '"' in self.raw  # here-strings


@dataclasses.dataclass
class Script:
    code: str                 # the script without comments; each string is __strN__
    literals: list[Literal]

    def literal(self, placeholder: str) -> Literal:
        return self.literals[int(re.fullmatch(r"__str(\d+)__", placeholder).group(1))]


def lex_powershell(text: str) -> Script:
    literals: list[Literal] = []

    def line_of(i: int) -> int:
        return text.count("\n", 0, i) + 1

    def string_end(i: int, quote: str) -> tuple[int, list[str]]:
        """Index of the closing quote of the string opening at text[i], and the code of the
        string's subexpressions."""
        subexpressions: list[str] = []
        j = i + 1
        while j < len(text):
            c = text[j]
            if quote == '"' and c == "`":
                j += 2
                continue
            if quote == '"' and text.startswith("$(", j):
                sub, j = code_until(j + 2, closing=True)
                subexpressions.append(sub)
                continue
            if c == quote:
                if text.startswith(quote, j + 1):  # '' or "" inside: an escaped quote
                    j += 2
                    continue
                return j, subexpressions
            j += 1
        raise ValueError(f"unterminated string at line {line_of(i)}")

    def code_until(i: int, closing: bool) -> tuple[str, int]:
        """Code from text[i] to the end, or past the ')' that closes a $( when closing."""
        out: list[str] = []
        depth = 0
        while i < len(text):
            c = text[i]
            if text.startswith("<#", i):
                i = text.index("#>", i) + 2
                out.append(" ")
            elif c == "#" and (i == 0 or text[i - 1] in " \t\r\n;(){}|"):
                end = text.find("\n", i)
                i = len(text) if end < 0 else end
            elif text.startswith(('@"', "@'"), i) and re.match(r"[ \t]*\r?\n", text[i + 2:]):
                quote = text[i + 1]
                end = re.compile(r"^" + quote + "@", re.MULTILINE).search(text, i + 2)
                if end is None:
                    raise ValueError(f"unterminated here-string at line {line_of(i)}")
                kind = "here-double" if quote == '"' else "here-single"
                literals.append(Literal(kind, text[i + 2:end.start()], line_of(i)))
                out.append(f"__str{len(literals) - 1}__")
                i = end.end()
            elif c in "'\"":
                end, subexpressions = string_end(i, c)
                literals.append(Literal("single" if c == "'" else "double", text[i + 1:end],
                                        line_of(i)))
                out.append(f"__str{len(literals) - 1}__")
                out.extend(f" ({sub}) " for sub in subexpressions)  # their code is code too
                i = end + 1
            else:
                if c == "`":  # an escaped character or a line continuation
                    out.append(text[i:i + 2])
                    i += 2
                    continue
                if c == "(":
                    depth += 1
                elif c == ")":
                    if closing and depth == 0:
                        return "".join(out), i + 1
                    depth -= 1
                out.append(c)
                i += 1
        if closing:
            raise ValueError("unclosed $( in a string")
        return "".join(out), i

    code, _ = code_until(0, closing=False)
    return Script(code, literals)


def block_end(code: str, open_brace: int) -> int:
    depth = 0
    for i in range(open_brace, len(code)):
        depth += {"{": 1, "}": -1}.get(code[i], 0)
        if depth == 0:
            return i
    raise ValueError("unbalanced braces")


def functions(script: Script) -> dict[str, tuple[int, int]]:
    """Function name -> (start, end) of its body in script.code."""
    found = {}
    for m in re.finditer(r"\bfunction\s+([\w-]+)[^{]*?\{", script.code, re.IGNORECASE):
        found[m.group(1)] = (m.end() - 1, block_end(script.code, m.end() - 1))
    return found


def sets_error_action(script: Script, body: str, value: str) -> bool:
    return any(script.literal(m.group(1)).raw.lower() == value.lower() for m in re.finditer(
        r"\$ErrorActionPreference\s*=\s*(__str\d+__)", body, re.IGNORECASE))


def pitfalls_51(text: str) -> list[str]:
    """What in a build script breaks under Windows PowerShell 5.1 with EAP 'Stop'."""
    script = lex_powershell(text)
    code = script.code
    found = []
    for m in re.finditer(r"(?:^|[^\w$])((?:2|\*)>>?(?:&1)?)", code):
        line = code.count(chr(10), 0, m.start()) + 1
        found.append(f"stderr redirection {m.group(1)!r} at line {line}")
    guarded = [span for name, span in functions(script).items()
               if sets_error_action(script, code[span[0]:span[1]], "Continue")]
    for m in re.finditer(r"(?<![&>\w])&(?![&>])", code):
        if not any(start < m.start() < end for start, end in guarded):
            found.append(f"native call outside a function with EAP 'Continue' at line "
                         f"{code.count(chr(10), 0, m.start()) + 1}")
    for m in re.finditer(r"(?im)^\s*(py|python3?|pip3?|pyinstaller|iscc(?:\.exe)?)\b", code):
        found.append(f"native program {m.group(1)!r} run by name, outside Run/Capture/ExitStatus")
    for lit in script.literals:
        if lit.kind.startswith("here"):
            found.append(f"here-string at line {lit.line}")
        elif lit.holds_double_quote():
            found.append(f"a double quote inside a string at line {lit.line}")
        if lit.raw == "-c":
            found.append(f"python -c code at line {lit.line}")
    if re.search(r"(?<=\s)-c(?=\s)", code):
        found.append("python -c code")
    return found


def test_lexer_reads_strings_comments_and_subexpressions() -> None:
    s = lex_powershell("# a comment with 2>$null\n<# block\n 2>&1 #>\n"
                       "$a = 'it''s' + \"x `\" $(& $b 'y') z\"\n"
                       "$h = @\"\nline \"quoted\"\n\"@\n")
    # a subexpression's strings come before the string that holds them
    assert [lit.kind for lit in s.literals] == ["single", "single", "double", "here-double"]
    assert s.literals[0].raw == "it''s" and not s.literals[0].holds_double_quote()
    assert s.literals[2].holds_double_quote() and s.literals[3].holds_double_quote()
    assert "2>" not in s.code          # the comments are gone
    assert "(& $b __str1__)" in s.code  # a subexpression's code is code


@pytest.mark.parametrize("snippet", [
    '$ErrorActionPreference = "Stop"\n& $VenvPy -c "import torch" 2>$null\n',
    "function Run($e) { & $e @args 2>&1 }\n",
    "$ErrorActionPreference = 'Stop'\n& $VenvPy @('--version')\n",
    "$Check = @\"\nimport sys\n\"@\nRun $VenvPy @('-c', $Check)\n",
    "Run $VenvPy @('-c', 'print(\"x\")')\n",
    "python -m pip install torch\n",
    "$v = \"$(& $py --version 2>$null)\"\n",
])
def test_pitfall_check_catches_each_51_pitfall(snippet: str) -> None:
    assert pitfalls_51(snippet)


def test_pitfall_check_allows_a_guarded_native_call() -> None:
    ok = ("$ErrorActionPreference = 'Stop'\n"
          "function Run([string]$Exe, [string[]]$Arguments) {\n"
          "    $ErrorActionPreference = 'Continue'\n"
          "    & $Exe @Arguments | Out-Host\n"
          "    if ($LASTEXITCODE -ne 0) { throw \"failed: $Exe $($Arguments -join ' ')\" }\n}\n"
          "Run $VenvPy @($BuildEnv, 'has-torch')\n")
    assert pitfalls_51(ok) == []


# ------------------------------------------------------------------ build.ps1

def test_build_ps1_is_free_of_the_51_pitfalls() -> None:
    text = BUILD_PS1.read_text(encoding="utf-8")
    script = lex_powershell(text)
    assert sets_error_action(script, script.code, "Stop")  # the regime the checks are about
    assert pitfalls_51(text) == []


def test_build_ps1_is_ascii() -> None:
    # Windows PowerShell 5.1 reads a script without a byte-order mark in the ANSI code page:
    # any non-ASCII character in it would reach the parser garbled.
    BUILD_PS1.read_bytes().decode("ascii")


def test_build_ps1_runs_its_python_from_files_that_exist() -> None:
    script = lex_powershell(BUILD_PS1.read_text(encoding="utf-8"))
    names = {lit.raw for lit in script.literals if lit.raw.endswith(".py")}
    assert "buildenv.py" in names
    for name in names:
        in_repo = ROOT / name.replace("\\", "/")
        assert (INSTALLER / "windows" / name).is_file() or in_repo.is_file(), name


def _iss_minimum() -> tuple[int, int, int]:
    m = re.search(r"^#if\s+VER\s*<\s*EncodeVer\((\d+),\s*(\d+),\s*(\d+)\)\s*\n\s*#error ",
                  EASEL_ISS.read_text(encoding="utf-8"), re.MULTILINE)
    assert m, "easel.iss has no Inno Setup version guard"
    return tuple(int(g) for g in m.groups())


def test_inno_setup_version_guard() -> None:
    """x64compatible needs Inno Setup 6.3: easel.iss refuses older compilers, and build.ps1
    looks for the same version (and for Inno Setup 7, and $env:ISCC)."""
    iss = EASEL_ISS.read_text(encoding="utf-8")
    minimum = _iss_minimum()
    if re.search(r"^Architectures\w*=.*\bx64compatible\b", iss, re.MULTILINE):
        assert minimum >= (6, 3, 0)
    script = lex_powershell(BUILD_PS1.read_text(encoding="utf-8"))
    m = re.search(r"\$MinInnoSetup\s*=\s*\[version\](__str\d+__)", script.code, re.IGNORECASE)
    assert m, "build.ps1 sets no $MinInnoSetup"
    ps_min = tuple(int(p) for p in script.literal(m.group(1)).raw.split("."))
    assert ps_min + (0,) * (3 - len(ps_min)) == minimum
    assert re.search(r"\$MinInnoSetup\b", script.code[m.end():])  # and compares with it
    raws = " ".join(lit.raw for lit in script.literals)
    assert "Inno Setup $Major" in raws and re.search(r"@\(__str\d+__, __str\d+__\)", script.code)
    assert {"7", "6"} <= {lit.raw for lit in script.literals}
    assert "$env:ISCC" in script.code
    assert "_is1" in raws  # the uninstall entry that names a custom install folder


@pytest.mark.parametrize(("args", "status", "out"), [
    (["check-python"], 0, ""),
    (["has-torch"], 0, ""),
    (["version"], 0, VERSION),
    (["nonsense"], 2, ""),
])
def test_buildenv_commands(args: list[str], status: int, out: str) -> None:
    proc = subprocess.run([sys.executable, str(INSTALLER / "windows" / "buildenv.py"), *args],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == status, proc.stderr
    assert proc.stdout.strip() == out


def test_buildenv_checks_the_torch_build() -> None:
    import torch

    got = "cuda" if torch.version.cuda else "cpu"
    other = {"cpu": "cuda", "cuda": "cpu"}[got]
    helper = str(INSTALLER / "windows" / "buildenv.py")
    ok = subprocess.run([sys.executable, helper, "check-torch", got],
                        capture_output=True, text=True, timeout=300, check=False)
    assert ok.returncode == 0 and f"torch {torch.__version__}" in ok.stdout, ok.stderr
    bad = subprocess.run([sys.executable, helper, "check-torch", other],
                         capture_output=True, text=True, timeout=300, check=False)
    assert bad.returncode == 1 and f"asked for a {other} torch" in bad.stderr


# ------------------------------------------------------------------ easel.spec on macOS

class _Target:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _Analysis(_Target):
    def __init__(self, scripts, **kwargs):
        super().__init__(scripts, **kwargs)
        self.datas, self.binaries, self.pure = [], [], []
        self.scripts = [("pyi_rth_multiprocessing", "", "PYSOURCE")] + [
            (Path(s).stem, s, "PYSOURCE") for s in scripts]


def _run_spec(platform: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
              env: dict[str, str] | None = None) -> dict:
    """Execute easel.spec as PyInstaller would on `platform`, with stand-ins that record
    the executables, the COLLECT and the BUNDLE."""
    import PyInstaller.compat  # noqa: F401 (imported before sys.platform changes)
    from PyInstaller.utils import hooks

    monkeypatch.setattr(hooks, "collect_submodules", lambda name: [])
    monkeypatch.setattr(hooks, "copy_metadata", lambda dist, recursive=False: [])
    osx = types.ModuleType("PyInstaller.utils.osx")
    osx.macosx_version_min = lambda path: (11, 0, 0)
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.osx", osx)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "platform", platform)
    for var in ("EASEL_PYI_ANALYSIS_ONLY", "EASEL_BUNDLE_BUILD", "EASEL_PYI_STRIP"):
        monkeypatch.delenv(var, raising=False)
    for var, value in (env or {}).items():
        monkeypatch.setenv(var, value)
    made: dict = {"EXE": []}

    def exe(*args, **kwargs):
        made["EXE"].append(_Target(*args, **kwargs))
        return made["EXE"][-1]

    def collect(*args, **kwargs):
        made["COLLECT"] = _Target(*args, **kwargs)
        return made["COLLECT"]

    def bundle(*args, **kwargs):
        made["BUNDLE"] = _Target(*args, **kwargs)
        return made["BUNDLE"]

    spec = INSTALLER / "easel.spec"
    namespace = {"__file__": str(spec), "__name__": "__main__", "SPECPATH": str(INSTALLER),
                 "DISTPATH": str(tmp_path / "dist"), "workpath": str(tmp_path / "work"),
                 "Analysis": _Analysis, "PYZ": _Target, "EXE": exe, "COLLECT": collect,
                 "BUNDLE": bundle}
    exec(compile(spec.read_text(encoding="utf-8"), str(spec), "exec"), namespace)  # noqa: S102
    return made


def _info_plist(made: dict) -> dict:
    """The Info.plist PyInstaller's BUNDLE writes (PyInstaller/building/osx.py,
    BUNDLE.assemble): the main executable is the COLLECT's first, the console setting its
    last; console=True adds LSBackgroundOnly=True; then info_plist is merged over it."""
    bundle = made["BUNDLE"]
    (coll,) = bundle.args
    exes = [a for a in coll.args if isinstance(a, _Target) and "name" in a.kwargs]
    plist = {"CFBundleExecutable": exes[0].kwargs["name"],
             "CFBundleShortVersionString": str(bundle.kwargs.get("version", "0.0.0"))}
    if exes[-1].kwargs["console"]:
        plist["LSBackgroundOnly"] = True
    else:
        plist["NSHighResolutionCapable"] = True
    plist.update(bundle.kwargs.get("info_plist") or {})
    return plist


def test_spec_makes_a_foreground_app_on_macos(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    made = _run_spec("darwin", monkeypatch, tmp_path)
    gui, cli = (next(e for e in made["EXE"] if e.kwargs["name"] == n)
                for n in ("easel-gui", "easel"))
    assert gui.kwargs["console"] is False and cli.kwargs["console"] is True
    plist = _info_plist(made)
    assert plist["CFBundleExecutable"] == "easel-gui"
    assert plist["LSBackgroundOnly"] is False
    assert re.fullmatch(r"\d+(\.\d+){0,2}", plist["CFBundleVersion"])
    assert re.fullmatch(r"\d+(\.\d+){0,2}", plist["CFBundleShortVersionString"])
    assert VERSION.startswith(plist["CFBundleShortVersionString"])
    assert plist["NSHighResolutionCapable"] is True
    assert made["BUNDLE"].kwargs["name"] == "Easel.app"
    plistlib.dumps(plist)  # every value is one a plist can hold


def test_spec_build_number_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    made = _run_spec("darwin", monkeypatch, tmp_path / "a")
    assert _info_plist(made)["CFBundleVersion"] == _info_plist(made)["CFBundleShortVersionString"]
    made = _run_spec("darwin", monkeypatch, tmp_path / "b", {"EASEL_BUNDLE_BUILD": "42"})
    assert _info_plist(made)["CFBundleVersion"] == "42"


def test_spec_gui_is_windowed_on_windows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    made = _run_spec("win32", monkeypatch, tmp_path)
    names = {e.kwargs["name"]: e.kwargs["console"] for e in made["EXE"]}
    assert names == {"easel-gui": False, "easel": True}
    assert "BUNDLE" not in made


# ------------------------------------------------------------------ build.sh

def _build_sh() -> str:
    return BUILD_SH.read_text(encoding="utf-8")


def _fake_app(tmp_path: Path, **plist) -> Path:
    app = tmp_path / "Easel.app"
    (app / "Contents" / "MacOS").mkdir(parents=True)
    (app / "Contents" / "MacOS" / "easel").write_bytes(b"")
    info = {"CFBundleExecutable": "easel-gui", "CFBundleIdentifier": "org.easel.Easel",
            "CFBundleShortVersionString": "0.1.0", "CFBundleVersion": "0.1.0",
            "LSBackgroundOnly": False, **plist}
    info = {k: v for k, v in info.items() if v is not None}
    (app / "Contents" / "Info.plist").write_bytes(plistlib.dumps(info))
    return app


@pytest.mark.parametrize(("plist", "ok"), [
    ({}, True),
    ({"LSBackgroundOnly": True}, False),        # what PyInstaller writes unless told
    ({"CFBundleVersion": None}, False),
    ({"CFBundleVersion": "0.1.0.dev1"}, False),
    ({"CFBundleExecutable": "easel"}, False),
])
def test_build_sh_checks_the_info_plist(tmp_path: Path, plist: dict, ok: bool) -> None:
    m = re.search(r"<<'PYCHECK'\n(.*?)\nPYCHECK\n", _build_sh(), re.DOTALL)
    assert m, "build.sh has no Info.plist check"
    app = _fake_app(tmp_path, **plist)
    proc = subprocess.run([sys.executable, "-", str(app)], input=m.group(1), text=True,
                          capture_output=True, timeout=60, check=False)
    assert (proc.returncode == 0) is ok, proc.stdout + proc.stderr


def _commands(text: str) -> list[str]:
    """The script's commands, comments dropped and continuation lines joined."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    return [c.strip() for c in "\n".join(lines).replace("\\\n", " ").splitlines() if c.strip()]


def test_build_sh_signs_inside_out_and_notarises_app_and_dmg() -> None:
    commands = _commands(_build_sh())
    signing = [c for c in commands if c.startswith("codesign ") and "--sign" in c]
    assert signing and not [c for c in signing if "--deep" in c]  # Apple: no --deep to sign
    assert all("--timestamp" in c for c in signing)
    assert any("find \"$APP/Contents\" -depth" in c for c in commands)  # innermost first
    text = "\n".join(commands)
    # the app is signed last of its contents, and before the DMG is made
    sign = text.index('--entitlements "$ENTITLEMENTS" --sign "$IDENTITY" "$APP"')
    assert sign < text.index("hdiutil create")
    for target in ('"$APP"', '"$DMG"'):
        assert f"xcrun stapler staple {target}" in text
    assert text.index("xcrun stapler staple \"$APP\"") < text.index("hdiutil create")
    assert 'notarise "$ZIP"' in text and 'notarise "$DMG"' in text
    assert re.search(r"xcrun notarytool log \"\$id\"", text)
    assert re.search(r"notarytool submit .*--output-format json", text)


def test_build_sh_starts_the_gui_executable_headless() -> None:
    text = "\n".join(_commands(_build_sh()))
    m = re.search(r"QT_QPA_PLATFORM=offscreen EASEL_STARTUP_PROBE=1 "
                  r".*\"\$APP/Contents/MacOS/easel-gui\"", text)
    assert m, "build.sh never starts easel-gui"
    assert 'grep -qx "easel: window shown"' in text


# ------------------------------------------------------------------ README names

def test_readme_names_the_settings_qsettings_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """desktop.settings.app_settings() without EASEL_HOME: QSettings(org, app) in the
    platform's native store, which Qt names HKEY_CURRENT_USER\\Software\\org\\app on
    Windows, ~/Library/Preferences/com.<org lower-case>.<app>.plist on macOS and
    ~/.config/org/app.conf on Linux."""
    from desktop import settings

    monkeypatch.delenv("EASEL_HOME", raising=False)
    s = settings.app_settings()
    org, app = s.organizationName(), s.applicationName()
    assert (org, app) == ("Easel", "Easel")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    keys = re.findall(r"HKCU\\Software\\[^`\s)]*", readme)
    assert keys and set(keys) == {f"HKCU\\Software\\{org}\\{app}"}, keys
    assert f"~/Library/Preferences/com.{org.lower()}.{app}.plist" in readme
    if sys.platform.startswith("linux"):
        assert s.fileName().endswith(f"/{org}/{app}.conf")
    assert f"~/.config/{org}/{app}.conf" in readme


def test_readme_names_the_artefacts_the_scripts_make() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    guide = (INSTALLER / "README.md").read_text(encoding="utf-8")
    iss = EASEL_ISS.read_text(encoding="utf-8")
    base = re.search(r"^OutputBaseFilename=(.+)$", iss, re.MULTILINE).group(1).strip()
    kind = re.search(r'#define TorchKind "(\w+)"', iss).group(1)
    setup = base.replace("{#AppVersion}", "<version>").replace("{#TorchKind}", kind) + ".exe"
    assert setup == "Easel-<version>-windows-x64-cpu-setup.exe"
    dmg = re.search(r'^DMG="dist/(.+)"$', _build_sh(), re.MULTILINE).group(1)
    dmg = dmg.replace("$VERSION", "<version>").replace("$ARCH", "arm64")
    linux = (INSTALLER / "build_linux.sh").read_text(encoding="utf-8")
    tarball = re.search(r'^\s*NAME="(.+)"$', linux, re.MULTILINE).group(1)
    tarball = tarball.replace("$VERSION", "<version>").replace("$ARCH", "x86_64") + ".tar.gz"
    for name in (setup, dmg, tarball):
        assert f"`{name}`" in readme, name
        assert name in guide, name
    assert "/Applications/Easel.app/Contents/MacOS/easel" in readme


def test_readme_asks_for_the_inno_setup_the_script_needs() -> None:
    major, minor, _ = _iss_minimum()
    guide = (INSTALLER / "README.md").read_text(encoding="utf-8")
    asked = re.findall(r"Inno Setup (\d+(?:\.\d+)?)", guide)
    assert f"{major}.{minor}" in asked
    assert "6" not in asked  # no bare "Inno Setup 6": 6.0-6.2 cannot compile easel.iss
