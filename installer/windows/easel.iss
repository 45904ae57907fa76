; Inno Setup script (6.3 or newer): Easel's per-user Windows installer, built from the PyInstaller folder
; dist\Easel\ (installer\easel.spec). installer\windows\build.ps1 runs it as
;
;   ISCC.exe /DAppVersion=0.1.0 /DDistDir=<repo>\dist\Easel /DOutputDir=<repo>\dist ^
;            installer\windows\easel.iss
;
; It installs for the current user only (no administrator rights, no UAC prompt) into
; %LOCALAPPDATA%\Programs\Easel, adds a Start-menu entry, optionally a desktop icon and the
; `easel` command on the user's PATH, and registers an uninstaller (Settings > Apps). The
; user's pictures, trained models, settings and logs live elsewhere (per-user folders that
; `easel info` prints) and are kept by the uninstaller.

; x64compatible (ArchitecturesAllowed below) is new in Inno Setup 6.3: an older compiler
; would stop on it with a less helpful message.
#if VER < EncodeVer(6,3,0)
  #error Inno Setup 6.3 or newer is needed to compile easel.iss: https://jrsoftware.org/isinfo.php
#endif

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef DistDir
  #define DistDir "..\..\dist\Easel"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif
#ifndef TorchKind
  #define TorchKind "cpu"
#endif

[Setup]
; The AppId identifies Easel to Windows across versions (upgrades replace, never duplicate):
; never change it.
AppId={{48676954-5061-411B-9D88-A0BAC8042852}
AppName=Easel
AppVersion={#AppVersion}
AppVerName=Easel {#AppVersion}
AppPublisher=Easel
AppComments=Offline generative image studio
; per user: {autopf} is {userpf} (%LOCALAPPDATA%\Programs) when running without admin rights
PrivilegesRequired=lowest
DefaultDirName={autopf}\Easel
DefaultGroupName=Easel
DisableProgramGroupPage=yes
UsePreviousAppDir=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#OutputDir}
OutputBaseFilename=Easel-{#AppVersion}-windows-x64-{#TorchKind}-setup
SetupIconFile=..\..\resources\icons\easel.ico
UninstallDisplayIcon={app}\easel-gui.exe
UninstallDisplayName=Easel {#AppVersion}
WizardStyle=modern
; torch's DLLs compress well with LZMA2; a solid archive of ~800 MB takes a few minutes
Compression=lzma2
SolidCompression=yes
LZMANumBlockThreads=4
; A CUDA build of torch makes a setup larger than one file can hold: split it then.
#if TorchKind == "cuda"
DiskSpanning=yes
DiskSliceSize=max
#endif
; the `easel` command on PATH (task addtopath) changes the user's environment
ChangesEnvironment=yes
CloseApplications=yes
RestartApplications=no

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add the easel command to my PATH (for the command line)"; GroupDescription: "Command line:"; Flags: unchecked

[InstallDelete]
; an upgrade must not keep an older version's libraries next to the new ones
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#DistDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Easel"; Filename: "{app}\easel-gui.exe"; Comment: "Offline generative image studio"
Name: "{autoprograms}\Easel self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\easel.exe"" --self-test"; IconFilename: "{app}\easel-gui.exe"; Comment: "Check that Easel and its models work"
Name: "{autodesktop}\Easel"; Filename: "{app}\easel-gui.exe"; Tasks: desktopicon

[Registry]
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\easel-gui.exe"; Description: "{cm:LaunchProgram,Easel}"; Flags: nowait postinstall skipifsilent

[Code]
{ Whether Dir is missing from the user's PATH (compared case-insensitively, entry by entry). }
function NeedsAddPath(Dir: string): Boolean;
var
  Paths: string;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Paths) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;

{ Take Dir out of the user's PATH again (the uninstaller; a no-op when it was never added). }
procedure RemovePath(Dir: string);
var
  Paths: string;
  P: Integer;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Paths) then
    exit;
  P := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';');
  if P = 0 then
    exit;
  { The match starts at the ';' before Dir in ';' + Paths + ';', so Dir starts at Paths[P]:
    delete it with the ';' before it, or with the one after it when it comes first. }
  if P > 1 then
    Delete(Paths, P - 1, Length(Dir) + 1)
  else
    Delete(Paths, 1, Length(Dir) + 1);
  RegWriteExpandStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Paths);
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usPostUninstall then
    RemovePath(ExpandConstant('{app}'));
end;
