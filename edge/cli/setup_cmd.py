"""`consentcam init` and `consentcam keys ...`."""

from __future__ import annotations

import argparse

from edge.cli.common import Context, add_json_option, add_passphrase_option, console, emit_json, print_table

# The handlers import edge.keys (cryptography, pyrage) when they run: parsing stays light (see main.py).


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create the state directory and keys", description=cmd_init.__doc__)
    add_passphrase_option(p)
    add_json_option(p)
    p.set_defaults(handler=cmd_init)

    k = sub.add_parser("keys", help="show keys, change the owner passphrase")
    ksub = k.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    show = ksub.add_parser("show", help="device id, public keys and fingerprints")
    add_json_option(show)
    show.set_defaults(handler=cmd_keys_show)
    pw = ksub.add_parser("passwd", help="change the owner passphrase")
    pw.add_argument("--new-passphrase-file", metavar="FILE", help="read the new passphrase from FILE")
    add_passphrase_option(pw)
    pw.set_defaults(handler=cmd_keys_passwd)


def cmd_init(ctx: Context) -> int:
    """Create the state directory: the owner's footage key pair (private half sealed with the
    owner's passphrase) and the device's signing key. Refuses to overwrite existing keys."""
    from edge import keys

    ctx.config  # noqa: B018 - a broken config should fail before keys are made
    passphrase = ctx.passphrase(confirm=True, prompt="New owner passphrase: ")
    info = keys.init_state(ctx.state, passphrase)
    if ctx.json:
        emit_json(info.to_dict())
    else:
        console().print(f"Initialised {ctx.state.root}\n  device id: [bold]{info.device_id}[/bold]")
        console().print("  Keep the passphrase safe: without it no footage can ever be opened.")
    return 0


def cmd_keys_show(ctx: Context) -> int:
    from edge import keys

    info = keys.load_device_info(ctx.state)
    if ctx.json:
        emit_json(info.to_dict())
        return 0
    print_table(
        None,
        ["what", "value"],
        [
            ["device id", info.device_id],
            ["device signing key", info.device_public_key],
            ["device key fingerprint", info.device_fingerprint],
            ["owner footage key (age)", info.owner_recipient],
            ["owner key fingerprint", info.owner_fingerprint],
            ["created", info.created],
        ],
    )
    return 0


def cmd_keys_passwd(ctx: Context) -> int:
    from edge import keys

    old = ctx.passphrase(prompt="Current passphrase: ")
    new_file = ctx.args.new_passphrase_file
    if new_file:
        from pathlib import Path

        new = keys.read_passphrase_file(Path(new_file))
    else:
        from edge.cli.common import prompt_passphrase

        new = prompt_passphrase("New passphrase: ", confirm=True)
    keys.change_passphrase(ctx.state, old, new)
    console().print("Passphrase changed.")
    return 0
