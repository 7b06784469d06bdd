"""Asking for a password: the keyring is opened off the UI thread (probing it can block), the modal offers to
remember it there (named) or says why it stays in this session's memory only."""

from __future__ import annotations

import asyncio
from typing import Any, Callable


def ask_credentials(app: Any, key: str, user: str, then: Callable[[], None] | None = None) -> None:
    """`key` names the secret (`service.credential_key`: the headless commands look it up the same way);
    `then` runs once it is kept."""
    from .modals import CredentialModal

    async def ask() -> None:
        store = await asyncio.to_thread(app.secret_store)
        modal = CredentialModal(key, user=user, store_where=store.where,
                                store_refused=store.persist_refused_reason())

        def answered(answer: Any) -> None:
            if answer is not None:
                app.run_worker(keep(answer), group="credentials", description="Storing the credentials",
                               exit_on_error=False)

        app.push_screen(modal, answered)

    async def keep(answer: Any) -> None:
        store = app.secret_store()
        if answer.remember:
            await asyncio.to_thread(store.set, key, answer.password)
            where = store.where
        else:
            store.keep(key, answer.password)
            where = "this session's memory only"
        message = f"Credentials for {answer.user} kept in {where}."
        app.log_line(message)
        app.notify(message, markup=False)
        if then is not None:
            then()

    app.run_worker(ask(), group="credentials", description="Opening the keyring", exit_on_error=False)
