<#
.SYNOPSIS
    Build Easel's Windows installer from a clean clone: a build venv, torch (CPU by default),
    Easel and PyInstaller, the bundle (installer\easel.spec), its self-test, and Inno Setup.

.DESCRIPTION
    From the repository root, in PowerShell:

        powershell -ExecutionPolicy Bypass -File installer\windows\build.ps1
        powershell -ExecutionPolicy Bypass -File installer\windows\build.ps1 -Torch cuda

    Needs Python 3.11 (the py launcher or python on PATH) and Inno Setup 6
    (https://jrsoftware.org/isinfo.php; ISCC.exe on PATH or in its default folder).
    Produces dist\Easel\ (easel.exe: console CLI; easel-gui.exe: the windowed app) and
    dist\Easel-<version>-windows-x64-<cpu|cuda>-setup.exe, a per-user installer.

.PARAMETER Torch
    cpu (default; also $env:EASEL_TORCH) or cuda: the CUDA build of torch from the PyTorch
    index (a far larger installer, split into setup.exe + .bin files; needs an NVIDIA driver).
.PARAMETER TorchVersion
    torch version (default 2.13.0, or $env:EASEL_TORCH_VERSION).
.PARAMETER TorchIndex
    pip index for torch (default https://download.pytorch.org/whl/cpu or .../cu128, or
    $env:EASEL_TORCH_INDEX). Pick the CUDA variant for your torch version on pytorch.org.
.PARAMETER Python
    the interpreter that makes the venv (default: py -3.11, else python).
.PARAMETER Clean
    make the build venv anew.
.PARAMETER SkipInstaller
    stop after checking the bundle (no Inno Setup).
#>
param(
    [ValidateSet("cpu", "cuda")]
    [string]$Torch = $(if ($env:EASEL_TORCH) { $env:EASEL_TORCH } else { "cpu" }),
    [string]$TorchVersion = $(if ($env:EASEL_TORCH_VERSION) { $env:EASEL_TORCH_VERSION } else { "2.13.0" }),
    [string]$TorchIndex = $env:EASEL_TORCH_INDEX,
    [string]$Python = "",
    [string]$Venv = "build\pyi-venv-win",
    [switch]$Clean,
    [switch]$SkipInstaller
)

$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest
$Root = (Resolve-Path (Join-Path $PSScriptRoot "..\..")).Path
Set-Location $Root
$Clock = [Diagnostics.Stopwatch]::StartNew()

function Step([string]$What) {
    Write-Host ("`n== {0} ({1:n0}s)" -f $What, $Clock.Elapsed.TotalSeconds)
}

# Run a program and stop the build when it fails (PowerShell does not for native programs).
function Run([string]$Exe, [string[]]$Arguments) {
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "failed ($LASTEXITCODE): $Exe $($Arguments -join ' ')" }
}

if (-not $TorchIndex) {
    $TorchIndex = if ($Torch -eq "cuda") { "https://download.pytorch.org/whl/cu128" } `
                  else { "https://download.pytorch.org/whl/cpu" }
}

# ---------------------------------------------------------------- the build environment
Step "build environment $Venv (torch $TorchVersion, $Torch)"
$Marker = Join-Path $Venv ".easel-torch"
$VenvPy = Join-Path $Venv "Scripts\python.exe"
$Wanted = "$Torch-$TorchVersion"
if ($Clean -or -not (Test-Path $VenvPy) -or
    -not (Test-Path $Marker) -or (Get-Content $Marker -Raw).Trim() -ne $Wanted) {
    if (Test-Path $Venv) { Remove-Item -Recurse -Force $Venv }
    if ($Python) {
        Run $Python @("-m", "venv", $Venv)
    } elseif (Get-Command py -ErrorAction SilentlyContinue) {
        Run "py" @("-3.11", "-m", "venv", $Venv)
    } else {
        Run "python" @("-m", "venv", $Venv)
    }
}
Run $VenvPy @("-c", "import sys; assert sys.version_info >= (3, 11), sys.version")
Run $VenvPy @("-m", "pip", "install", "--upgrade", "--quiet", "pip")

& $VenvPy -c "import torch" 2>$null
if ($LASTEXITCODE -ne 0) {
    Run $VenvPy @("-m", "pip", "install", "torch==$TorchVersion", "--index-url", $TorchIndex,
                  "--extra-index-url", "https://pypi.org/simple")
}
$Check = @"
import sys, torch
kind, cuda = sys.argv[1], torch.version.cuda
print(f"torch {torch.__version__} (CUDA {cuda or 'none'})")
if (kind == "cuda") != bool(cuda):
    sys.exit(f"build.ps1: asked for a {kind} torch, got {torch.__version__}")
"@
Run $VenvPy @("-c", $Check, $Torch)
Set-Content -Path $Marker -Value $Wanted

Step "Easel and PyInstaller"
Run $VenvPy @("-m", "pip", "install", "--quiet", "--upgrade", $Root)
Run $VenvPy @("-m", "pip", "install", "--quiet", "-r", "installer\requirements-build.txt")
$Version = (& $VenvPy -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])").Trim()
if (-not (Test-Path "resources\icons\easel.ico")) { Run $VenvPy @("installer\make_icon.py") }

# ---------------------------------------------------------------- PyInstaller
Step "PyInstaller (installer\easel.spec)"
Run (Join-Path $Venv "Scripts\pyinstaller.exe") @("--noconfirm", "--clean", "--log-level", "WARN",
    "--workpath", "build\pyi-work", "--distpath", "dist", "installer\easel.spec")
$Bundle = Join-Path $Root "dist\Easel"

# ---------------------------------------------------------------- check the bundle
$CheckHome = Join-Path ([IO.Path]::GetTempPath()) ("easel-build-" + [Guid]::NewGuid())
New-Item -ItemType Directory -Path $CheckHome | Out-Null
$env:EASEL_HOME = $CheckHome
try {
    Step "bundle check: easel --self-test"
    $SelfTest = [Diagnostics.Stopwatch]::StartNew()
    Run (Join-Path $Bundle "easel.exe") @("--self-test")
    $SelfTestS = $SelfTest.Elapsed.TotalSeconds

    # A render worker is a spawned process on Windows: this checks freeze_support in the
    # frozen entry (installer\entry_easel.py). One torch thread leaves a core for it.
    Step "bundle check: easel train tiny_vae --steps 3 with a render worker process"
    $env:OMP_NUM_THREADS = "1"
    Run (Join-Path $Bundle "easel.exe") @("train", "tiny_vae", "--steps", "3", "--set",
        "data.workers=1", "--out", (Join-Path $CheckHome "train"))
    Remove-Item Env:OMP_NUM_THREADS
    if (-not (Test-Path (Join-Path $CheckHome "train\tiny_vae.safetensors"))) {
        throw "the bundled training run wrote no model"
    }
} finally {
    Remove-Item Env:EASEL_HOME
    Remove-Item -Recurse -Force $CheckHome -ErrorAction SilentlyContinue
}
$BundleMB = [math]::Round(((Get-ChildItem -Recurse -File $Bundle | Measure-Object Length -Sum).Sum) / 1MB)

# ---------------------------------------------------------------- Inno Setup
$Setup = ""
if (-not $SkipInstaller) {
    Step "Inno Setup (installer\windows\easel.iss)"
    $Iscc = (Get-Command iscc -ErrorAction SilentlyContinue | Select-Object -First 1 -ExpandProperty Source)
    if (-not $Iscc) {
        $Iscc = @("${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe",
                  "$env:ProgramFiles\Inno Setup 6\ISCC.exe",
                  "$env:LOCALAPPDATA\Programs\Inno Setup 6\ISCC.exe") |
                Where-Object { Test-Path $_ } | Select-Object -First 1
    }
    if (-not $Iscc) { throw "Inno Setup 6 (ISCC.exe) not found: install it, or pass -SkipInstaller" }
    Run $Iscc @("/Q", "/DAppVersion=$Version", "/DDistDir=$Bundle", "/DOutputDir=$Root\dist",
                "/DTorchKind=$Torch", "installer\windows\easel.iss")
    $Setup = "dist\Easel-$Version-windows-x64-$Torch-setup.exe"
}

Write-Host ""
Write-Host "Easel $Version for Windows x64, torch $TorchVersion ($Torch)"
Write-Host "  bundle       dist\Easel\ ($BundleMB MB): easel.exe, easel-gui.exe"
if ($Setup) { Write-Host ("  installer    $Setup ({0:n0} MB)" -f ((Get-Item $Setup).Length / 1MB)) }
Write-Host ("  self-test    passed in {0:n1} s" -f $SelfTestS)
Write-Host ("  build time   {0:n0} s" -f $Clock.Elapsed.TotalSeconds)
