"""The ``appliance`` command.

    appliance serve [--host H] [--port P]
    appliance config check PATH
    appliance models list | install NAME... [--from PATH] [--force] | verify [NAME...]
    appliance hardware [--json]
    appliance tenants|departments|apps|keys create|list|show|update|revoke ... [--json]
    appliance audit verify|search|export|rotate-master-key|purge ...
    appliance classify [--jsonl]
    appliance usage report ... | appliance limits set|list ...
    appliance policy check FILE | appliance policy show
    appliance providers status [--json] [--url URL]   (asks the running daemon)
    appliance enroll URL TOKEN | appliance sync status|now
    appliance central serve|policy publish|enroll-token|fleet ...  (the control plane)

Every subcommand accepts ``--config PATH`` and ``--data-dir PATH`` (before or after the
subcommand's name). Exit codes: 0 success, 1 failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

from appliance import cli_admin, policy_cli, providers_cli
from appliance.audit import cli as audit_cli
from appliance.classify import cli as classify_cli
from appliance.limits import cli as limits_cli
from appliance.config import Config, ConfigError, load_config, resolve_data_dir
from sync import cli as sync_cli
from sync.central import cli as central_cli


DATA_DIR_HELP = "data directory (default: $APPLIANCE_DATA_DIR or ./.appliance)"


def _common(parser: argparse.ArgumentParser, suppress: bool,
            data_dir_help: str = DATA_DIR_HELP) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--config", type=Path, default=default, metavar="PATH",
                        help="TOML configuration file (default: embedded defaults)")
    parser.add_argument("--data-dir", type=Path, default=default, metavar="PATH",
                        help=data_dir_help)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance",
                                     description="On-premises AI gateway (OpenAI API).")
    _common(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str,
                data_dir_help: str = DATA_DIR_HELP) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _common(sub, suppress=True, data_dir_help=data_dir_help)
        return sub

    serve = command("serve", "run the daemon")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind; 0 picks a free one (default 8080)")

    config = command("config", "configuration tools")
    config_sub = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = config_sub.add_parser("check", help="validate a configuration file and exit")
    check.add_argument("path", type=Path, metavar="PATH")

    models = command("models", "install and verify model artifacts")
    models_sub = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    models_sub.add_parser("list", help="catalog entries and whether they are installed")
    install = models_sub.add_parser("install", help="fetch, verify (sha256) and install")
    install.add_argument("names", nargs="+", metavar="NAME")
    install.add_argument("--from", dest="from_path", type=Path, metavar="PATH",
                         help="a local file (or a directory of files) instead of the source")
    install.add_argument("--force", action="store_true", help="reinstall even if intact")
    verify = models_sub.add_parser("verify", help="re-hash installed files")
    verify.add_argument("names", nargs="*", metavar="NAME")

    hardware = command("hardware", "probe this machine and show the chosen profile")
    hardware.add_argument("--json", action="store_true", help="print JSON")
    cli_admin.add_parsers(command)
    limits_cli.add_parser(command)
    audit_cli.add_parser(commands, lambda p: _common(p, suppress=True))
    classify_cli.add_parser(commands, lambda p: _common(p, suppress=True))
    policy_cli.add_parser(command)
    providers_cli.add_parser(command)
    sync_cli.add_parser(command)
    central_cli.add_parser(command)
    return parser


def _fail(message: str) -> int:
    print(f"appliance: error: {message}", file=sys.stderr)
    return 1


def cmd_serve(args: argparse.Namespace, config: Config, data_dir: Path) -> int:
    from appliance.server import serve

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        config = msgspec.structs.replace(
            config, server=msgspec.structs.replace(config.server, **overrides))
        try:  # re-validate (e.g. a port out of range) through the same rules as the file
            config = msgspec.convert(msgspec.to_builtins(config), Config)
        except msgspec.ValidationError as exc:
            return _fail(f"invalid command-line value: {exc}")
    return serve(config, data_dir)


def cmd_config(args: argparse.Namespace) -> int:
    load_config(args.path)
    print(f"{args.path}: OK")
    return 0


def cmd_models(args: argparse.Namespace, config: Config, data_dir: Path) -> int:
    from local_models.artifacts import ArtifactStore
    from local_models.errors import ArtifactError

    store = ArtifactStore(data_dir / "models")
    try:
        if args.action == "list":
            rows = store.status()
            print(f"{'NAME':<20} {'KIND':<10} {'SIZE':>12}  INSTALLED")
            for row in rows:
                print(f"{row.name:<20} {row.kind:<10} {row.size:>12}  "
                      f"{'yes' if row.installed else 'no'}")
            return 0
        if args.action == "install":
            if args.from_path is not None and len(args.names) != 1:
                return _fail("--from takes exactly one NAME")
            for name in args.names:
                (data_dir / "models").mkdir(mode=0o700, parents=True, exist_ok=True)
                installed = store.install(name, args.from_path, force=args.force,
                                          progress=lambda m: print(m, file=sys.stderr))
                print(f"{name}: installed and verified in {installed.path}")
            return 0
        names = args.names or [row.name for row in store.status() if row.installed]
        failed = False
        for name in names:
            report = store.verify(name)
            for check in report.files:
                print(f"{name}/{check.filename}: {check.state}")
            failed = failed or not report.ok
        return 1 if failed else 0
    except ArtifactError as exc:
        return _fail(str(exc))


def cmd_hardware(args: argparse.Namespace) -> int:
    from hardware import choose_profile, format_report, probe, report_dict
    from local_models.llama_pool import gpu_offload_supported

    info = probe(offload_check=gpu_offload_supported)
    profile = choose_profile(info)
    if args.json:
        print(json.dumps(report_dict(info, profile), indent=2))
    else:
        print(format_report(info, profile))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "central":  # its own config file and data directory
        return central_cli.run(args)
    try:
        if args.command == "config":
            return cmd_config(args)
        config = load_config(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    data_dir = resolve_data_dir(args.data_dir, config)
    if args.command == "serve":
        return cmd_serve(args, config, data_dir)
    if args.command == "models":
        return cmd_models(args, config, data_dir)
    if args.command == "hardware":
        return cmd_hardware(args)
    if args.command == "classify":
        return classify_cli.run(args, config.classify)
    if args.command == "audit":
        return audit_cli.run(args, data_dir, config.audit)
    if args.command in policy_cli.COMMANDS:
        return policy_cli.run(args, config)
    if args.command in sync_cli.COMMANDS:
        return sync_cli.run(args, config, data_dir)
    if args.command in limits_cli.COMMANDS:
        return limits_cli.run(args, data_dir)
    if args.command in providers_cli.COMMANDS:
        return providers_cli.run(args, config, data_dir)
    return cli_admin.run(args, data_dir)


if __name__ == "__main__":
    sys.exit(main())
