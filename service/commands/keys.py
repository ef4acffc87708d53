"""`travelrisk keys`: create, list and revoke API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from service.commands.common import command_session
from service.keys.roles import Role

app = typer.Typer(help="API keys: create, list and revoke.", no_args_is_help=True)


@app.command()
def create(
    tenant: Annotated[str, typer.Option(help="Tenant name (created when new).")],
    role: Annotated[Role, typer.Option(help="What the key may do.", case_sensitive=False)],
    holder: Annotated[
        str | None,
        typer.Option(help="The staff member the key is issued to (an opaque id; required for reviewer keys)."),
    ] = None,
) -> None:
    """Create a key and print it on stdout (and nothing else). Only its hash is stored."""
    from service.keys import service
    from service.tenants import service as tenants

    if not tenants.valid_tenant_name(tenant):
        raise typer.BadParameter(
            "use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit", param_hint="--tenant"
        )
    try:
        service.check_holder(role, holder)
    except service.InvalidHolder as exc:
        raise typer.BadParameter(str(exc), param_hint="--holder") from exc
    with command_session() as session:
        issued = service.create_key(session, tenant, role, holder)
    typer.echo(issued.secret)


@app.command("list")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
) -> None:
    """List keys (id, tenant, role, created, revoked); never the keys themselves."""
    from service.keys import service
    from service.tenants import service as tenants

    with command_session() as session:
        tenant_id = None
        if tenant is not None:
            found = tenants.get_by_name(session, tenant)
            if found is None:
                typer.echo(f"no tenant named {tenant!r}", err=True)
                raise typer.Exit(1)
            tenant_id = found.id
        rows = service.list_keys(session, tenant_id)
        typer.echo("id\ttenant\trole\tholder\tcreated_at\trevoked_at")
        for key in rows:
            revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "-"
            created = key.created_at.isoformat(timespec="seconds")
            typer.echo(f"{key.id}\t{key.tenant.name}\t{key.role}\t{key.holder or '-'}\t{created}\t{revoked}")


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `keys list`), or the key itself.")],
) -> None:
    """Revoke a key: it fails authentication from now on and stays listed."""
    from service.keys import service

    wanted = service.parse_key_id(key_id) or key_id
    with command_session() as session:
        record = service.get_key(session, wanted)
        if record is None:
            typer.echo(f"no key with id {wanted!r}", err=True)
            raise typer.Exit(1)
        service.revoke(record)
    typer.echo(f"revoked {wanted}", err=True)
