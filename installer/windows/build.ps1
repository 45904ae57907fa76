<#
.SYNOPSIS
    Build Easel's Windows installer from a clean clone: a build venv, torch (CPU by default),
    Easel and PyInstaller, the bundle (installer\easel.spec), its checks, and Inno Setup.

.DESCRIPTION
    From the repository root, in Windows PowerShell 5.1 or PowerShell 7:

        powershell -ExecutionPolicy Bypass -File installer\windows\build.ps1
        powershell -ExecutionPolicy Bypass -File installer\windows\build.ps1 -Torch cuda
        pwsh -File installer\windows\build.ps1 -SkipInstaller

    Needs Python 3.11 or newer (the py launcher, python on PATH, or -Python) and Inno Setup
    6.3 or newer (https://jrsoftware.org/isinfo.php: ISCC.exe in $env:ISCC, on PATH, or where
    Inno Setup 6 or 7 installs it).
    Produces dist\Easel\ (easel.exe: console CLI; easel-gui.exe: the windowed app) and
    dist\Easel-<version>-windows-x64-<cpu|cuda>-setup.exe, a per-user installer.

    Written for both PowerShells: Windows PowerShell 5.1 turns what a native program writes
    to a redirected stderr into error records, which $ErrorActionPreference = 'Stop' makes
    fatal, and it passes double quotes inside native arguments to the program unescaped.
    So native programs run only through Run, Capture and ExitStatus below (which judge them
    by their exit status, never by their stderr), nothing redirects stderr, and the Python
    code the build runs lives in installer\windows\buildenv.py, not in -c arguments.

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
.PARAMETER Venv
    the build venv's folder (default build\pyi-venv-win).
.PARAMETER Clean
    make the build venv anew.
.PARAMETER SkipInstaller
    stop after checking the bundle (no Inno Setup).
#>
param(
    [ValidateSet('cpu', 'cuda')]
    [string]$Torch = $(if ($env:EASEL_TORCH) { $env:EASEL_TORCH } else { 'cpu' }),
    [string]$TorchVersion = $(if ($env:EASEL_TORCH_VERSION) { $env:EASEL_TORCH_VERSION } else { '2.13.0' }),
    [string]$TorchIndex = $env:EASEL_TORCH_INDEX,
    [string]$Python = '',
    [string]$Venv = 'build\pyi-venv-win',
    [switch]$Clean,
    [switch]$SkipInstaller
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$Root = (Resolve-Path (Join-Path $PSScriptRoot '..\..')).Path
Set-Location $Root
$Clock = [Diagnostics.Stopwatch]::StartNew()
$BuildEnv = Join-Path $PSScriptRoot 'buildenv.py'
# easel.iss needs Inno Setup 6.3 (ArchitecturesAllowed=x64compatible); it checks this too.
$MinInnoSetup = [version]'6.3.0'
# The longest path a package writes below site-packages: 171 characters for torch 2.13
# (a license file in its dist-info), with room for a longer one.
$LongestPackagePath = 180

function Step([string]$What) {
    Write-Host ("`n== {0} ({1:n0}s)" -f $What, $Clock.Elapsed.TotalSeconds)
}

# The three ways this script runs a native program. Each one sets $ErrorActionPreference to
# 'Continue' in its own scope, so that stderr output (pip's and PyInstaller's warnings) is
# shown and never stops the build, and judges the program by its exit status.

# Run a program, show its output, stop the build when it fails.
function Run([string]$Exe, [string[]]$Arguments) {
    $ErrorActionPreference = 'Continue'
    & $Exe @Arguments | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "failed ($LASTEXITCODE): $Exe $($Arguments -join ' ')" }
}

# Run a program and return its standard output, trimmed; stop the build when it fails.
function Capture([string]$Exe, [string[]]$Arguments) {
    $ErrorActionPreference = 'Continue'
    $Output = & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "failed ($LASTEXITCODE): $Exe $($Arguments -join ' ')" }
    return ($Output | Out-String).Trim()
}

# Run a program, show its output, return its exit status.
function ExitStatus([string]$Exe, [string[]]$Arguments) {
    $ErrorActionPreference = 'Continue'
    & $Exe @Arguments | Out-Host
    return $LASTEXITCODE
}

function Test-LongPathsEnabled {
    $FileSystem = Get-ItemProperty -Path 'HKLM:\SYSTEM\CurrentControlSet\Control\FileSystem' `
                                   -ErrorAction SilentlyContinue
    return [bool]($FileSystem -and
                  ($FileSystem.PSObject.Properties.Name -contains 'LongPathsEnabled') -and
                  $FileSystem.LongPathsEnabled -eq 1)
}

# ISCC.exe of Inno Setup 6.3 or newer: $env:ISCC, else on PATH, else where Inno Setup 7 or 6
# installs (its default folders, or the folder its uninstall entry names).
function Find-InnoSetup {
    if ($env:ISCC) {
        if (-not (Test-Path -LiteralPath $env:ISCC -PathType Leaf)) {
            throw "ISCC is set to $env:ISCC, which is not a file: point it at Inno Setup's ISCC.exe"
        }
        $Candidates = @($env:ISCC)
    } else {
        $Candidates = @()
        $Candidates += @(Get-Command 'ISCC.exe' -ErrorAction SilentlyContinue |
                         ForEach-Object { $_.Source })
        foreach ($Major in @('7', '6')) {
            foreach ($Base in @(${env:ProgramFiles(x86)}, $env:ProgramFiles,
                                $(if ($env:LOCALAPPDATA) { Join-Path $env:LOCALAPPDATA 'Programs' }))) {
                if ($Base) { $Candidates += Join-Path $Base "Inno Setup $Major\ISCC.exe" }
            }
            foreach ($Hive in @('HKLM:\SOFTWARE\WOW6432Node', 'HKLM:\SOFTWARE', 'HKCU:\SOFTWARE')) {
                $Entry = Get-ItemProperty -ErrorAction SilentlyContinue `
                    -Path "$Hive\Microsoft\Windows\CurrentVersion\Uninstall\Inno Setup ${Major}_is1"
                if ($Entry -and ($Entry.PSObject.Properties.Name -contains 'InstallLocation')) {
                    $Candidates += Join-Path $Entry.InstallLocation 'ISCC.exe'
                }
            }
        }
    }
    $Found = @()
    foreach ($Candidate in $Candidates) {
        if (-not (Test-Path -LiteralPath $Candidate -PathType Leaf)) { continue }
        $Version = Get-InnoSetupVersion $Candidate
        if ($Version -and $Version -ge $MinInnoSetup) { return $Candidate }
        if (-not $Version) { $Version = 'unknown' }
        $Found += "$Candidate (version $Version)"
    }
    $Needed = "Inno Setup $MinInnoSetup or newer (https://jrsoftware.org/isinfo.php)"
    if ($Found) {
        throw "$Needed is needed; found only $($Found -join ', '). Install a newer one, set ISCC to its ISCC.exe, or pass -SkipInstaller"
    }
    throw "$Needed is needed and was not found: install it, set ISCC to its ISCC.exe, or pass -SkipInstaller"
}

# The version in ISCC.exe's version resource, e.g. 6.3.3 (null when it has none).
function Get-InnoSetupVersion([string]$Iscc) {
    $Info = (Get-Item -LiteralPath $Iscc).VersionInfo
    foreach ($Text in @($Info.ProductVersion, $Info.FileVersion)) {
        if ($Text -and $Text -match '^\s*(\d+)\.(\d+)(\.(\d+))?') {
            $Patch = 0
            if ($Matches[4]) { $Patch = [int]$Matches[4] }
            return [version]::new([int]$Matches[1], [int]$Matches[2], $Patch)
        }
    }
    return $null
}

if (-not $TorchIndex) {
    $TorchIndex = if ($Torch -eq 'cuda') { 'https://download.pytorch.org/whl/cu128' } `
                  else { 'https://download.pytorch.org/whl/cpu' }
}
$VenvFull = [IO.Path]::GetFullPath([IO.Path]::Combine($Root, $Venv))
$VenvPy = Join-Path $VenvFull 'Scripts\python.exe'

# ---------------------------------------------------------------- path lengths
# pip and PyInstaller write torch's deepest files below these folders; without long paths
# enabled Windows refuses any path over 259 characters, half-way through an install.
if (-not (Test-LongPathsEnabled)) {
    foreach ($Folder in @((Join-Path $VenvFull 'Lib\site-packages'),
                          (Join-Path $Root 'dist\Easel\_internal'))) {
        if ($Folder.Length + 1 + $LongestPackagePath -gt 259) {
            throw ("Windows long paths are off and $Folder is $($Folder.Length) characters " +
                   "long: torch's files below it would pass Windows' 260-character limit. " +
                   'Clone Easel to a shorter folder (such as C:\src\easel), pass a short ' +
                   '-Venv (such as C:\easel-venv), or enable long paths (as administrator: ' +
                   'Set-ItemProperty HKLM:\SYSTEM\CurrentControlSet\Control\FileSystem ' +
                   'LongPathsEnabled 1, then start a new PowerShell).')
        }
    }
}

# ---------------------------------------------------------------- the build environment
Step "build environment $VenvFull (torch $TorchVersion, $Torch)"
$Marker = Join-Path $VenvFull '.easel-torch'
$Wanted = "$Torch-$TorchVersion"
if ($Clean -or -not (Test-Path $VenvPy) -or
    -not (Test-Path $Marker) -or (Get-Content $Marker -Raw).Trim() -ne $Wanted) {
    if (Test-Path $VenvFull) { Remove-Item -Recurse -Force $VenvFull }
    $PyExe = ''
    $PyArgs = @()
    if ($Python) {
        $PyExe = $Python
    } elseif ((Get-Command py -ErrorAction SilentlyContinue) -and
              (ExitStatus 'py' @('-3.11', '--version')) -eq 0) {
        $PyExe = 'py'
        $PyArgs = @('-3.11')
    } elseif (Get-Command python -ErrorAction SilentlyContinue) {
        $PyExe = 'python'
    } else {
        throw ('Python 3.11 was not found: install it from python.org (with the py ' +
               'launcher), or pass -Python C:\path\to\python.exe')
    }
    Run $PyExe ($PyArgs + @('-m', 'venv', $VenvFull))
}
Run $VenvPy @($BuildEnv, 'check-python')
Run $VenvPy @('-m', 'pip', 'install', '--upgrade', '--quiet', 'pip')

if ((ExitStatus $VenvPy @($BuildEnv, 'has-torch')) -ne 0) {
    Run $VenvPy @('-m', 'pip', 'install', "torch==$TorchVersion", '--index-url', $TorchIndex,
                  '--extra-index-url', 'https://pypi.org/simple')
}
Run $VenvPy @($BuildEnv, 'check-torch', $Torch)
Set-Content -Path $Marker -Value $Wanted

Step 'Easel and PyInstaller'
Run $VenvPy @('-m', 'pip', 'install', '--quiet', '--upgrade', $Root)
Run $VenvPy @('-m', 'pip', 'install', '--quiet', '-r', 'installer\requirements-build.txt')
$Version = Capture $VenvPy @($BuildEnv, 'version')
if (-not (Test-Path 'resources\icons\easel.ico')) { Run $VenvPy @('installer\make_icon.py') }

# ---------------------------------------------------------------- PyInstaller
Step 'PyInstaller (installer\easel.spec)'
Run $VenvPy @('-m', 'PyInstaller', '--noconfirm', '--clean', '--log-level', 'WARN',
    '--workpath', 'build\pyi-work', '--distpath', 'dist', 'installer\easel.spec')
$Bundle = Join-Path $Root 'dist\Easel'

# ---------------------------------------------------------------- check the bundle
$CheckHome = Join-Path ([IO.Path]::GetTempPath()) ('easel-build-' + [Guid]::NewGuid())
New-Item -ItemType Directory -Path $CheckHome | Out-Null
$env:EASEL_HOME = $CheckHome
try {
    Step 'bundle check: easel --self-test'
    $SelfTest = [Diagnostics.Stopwatch]::StartNew()
    Run (Join-Path $Bundle 'easel.exe') @('--self-test')
    $SelfTestS = $SelfTest.Elapsed.TotalSeconds

    # A render worker is a spawned process on Windows: this checks freeze_support in the
    # frozen entry (installer\entry_easel.py). One torch thread leaves a core for it.
    Step 'bundle check: easel train tiny_vae --steps 3 with a render worker process'
    $env:OMP_NUM_THREADS = '1'
    Run (Join-Path $Bundle 'easel.exe') @('train', 'tiny_vae', '--steps', '3', '--set',
        'data.workers=1', '--out', (Join-Path $CheckHome 'train'))
    Remove-Item Env:OMP_NUM_THREADS
    if (-not (Test-Path (Join-Path $CheckHome 'train\tiny_vae.safetensors'))) {
        throw 'the bundled training run wrote no model'
    }

    # The windowed executable, once, headless: Qt's offscreen platform, and
    # EASEL_STARTUP_PROBE=1 closes the app once its window is shown. A windowed program has
    # no stdout, so the app's log says whether it got there.
    Step 'bundle check: easel-gui opens its window and closes (offscreen)'
    $env:QT_QPA_PLATFORM = 'offscreen'
    $env:EASEL_STARTUP_PROBE = '1'
    $Gui = Start-Process -FilePath (Join-Path $Bundle 'easel-gui.exe') -PassThru
    $null = $Gui.Handle  # without a handle taken while it runs, ExitCode reads empty
    if (-not $Gui.WaitForExit(180000)) {
        Stop-Process -Id $Gui.Id -Force
        throw 'easel-gui did not close within 3 minutes'
    }
    $GuiLog = Join-Path $CheckHome 'logs\easel.log'
    if ($Gui.ExitCode -ne 0 -or -not (Test-Path $GuiLog) -or
        -not (Select-String -LiteralPath $GuiLog -SimpleMatch 'Easel closed (exit code 0)' -Quiet)) {
        if (Test-Path $GuiLog) { Get-Content $GuiLog | Out-Host }
        throw "easel-gui failed (exit status $($Gui.ExitCode)); its log is above"
    }
} finally {
    Remove-Item Env:EASEL_HOME, Env:OMP_NUM_THREADS, Env:QT_QPA_PLATFORM, Env:EASEL_STARTUP_PROBE `
                -ErrorAction SilentlyContinue
    Remove-Item -Recurse -Force $CheckHome -ErrorAction SilentlyContinue
}
$BundleMB = [math]::Round(((Get-ChildItem -Recurse -File $Bundle | Measure-Object Length -Sum).Sum) / 1MB)

# ---------------------------------------------------------------- Inno Setup
$Setup = ''
if (-not $SkipInstaller) {
    Step 'Inno Setup (installer\windows\easel.iss)'
    $Iscc = Find-InnoSetup
    Write-Host "using $Iscc (Inno Setup $(Get-InnoSetupVersion $Iscc))"
    Run $Iscc @('/Q', "/DAppVersion=$Version", "/DDistDir=$Bundle", "/DOutputDir=$Root\dist",
                "/DTorchKind=$Torch", 'installer\windows\easel.iss')
    $Setup = "dist\Easel-$Version-windows-x64-$Torch-setup.exe"
    if (-not (Test-Path $Setup)) { throw "Inno Setup made no $Setup" }
}

Write-Host ''
Write-Host "Easel $Version for Windows x64, torch $TorchVersion ($Torch)"
Write-Host "  bundle       dist\Easel\ ($BundleMB MB): easel.exe, easel-gui.exe"
if ($Setup) { Write-Host ('  installer    {0} ({1:n0} MB)' -f $Setup, ((Get-Item $Setup).Length / 1MB)) }
Write-Host ('  self-test    passed in {0:n1} s' -f $SelfTestS)
Write-Host ('  build time   {0:n0} s' -f $Clock.Elapsed.TotalSeconds)
