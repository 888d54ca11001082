"""Admins manage operators: add one, set a role, deactivate or reactivate, reset a password,
lift a lockout. New and reset passwords are shown once, here, and never stored in clear.

Every button checks again, when clicked, that this session still holds and is an admin's
(`session.guarded`), and each change checks it once more in its own transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import streamlit as st

from henpin import accounts
from henpin.accounts import ROLES, AccountRefused, PasswordReset
from ui import display, session
from ui.i18n import LANGUAGES, label, t, worded
from ui.messages import account_text

session.require_admin()
store_url = session.store_url()
now = datetime.now(UTC)
FLASH = "operators.flash"


Change = Callable[[accounts.Actor], str | PasswordReset | None]


def act(change: Change, done: str, **params: str) -> None:
    """Run an account change as the admin this session still is (checked again: a callback runs
    before the page's own checks); remember its message (and a new password) for the next run."""
    me = session.still_allowed("admin")
    if me is None:
        return  # signed out, or no longer an admin: the page that follows says why
    try:
        result = change(accounts.Actor(name=me.name, where=session.where()))
    except AccountRefused as refused:
        st.session_state[FLASH] = ("error", account_text(refused), None)
        return
    if isinstance(result, PasswordReset):
        if params.get("target") == me.name:
            session.keep_after_own_reset(result.session_epoch)
        result = result.password
    st.session_state[FLASH] = ("success", t(done, **params), result)


def add() -> None:
    name = str(st.session_state.get("operators.new.name") or "")
    role = str(st.session_state.get("operators.new.role") or "operator")
    lang = str(st.session_state.get("operators.new.language") or "en")
    act(
        lambda by: accounts.create_operator(store_url, name, role=role, language=lang, by=by),
        "operators.added",
        name=display.plain(name),
    )


st.title(t("operators.title"))
if (flash := st.session_state.pop(FLASH, None)) is not None:
    level, text, password = flash
    (st.success if level == "success" else st.error)(text)
    if password:
        st.caption(t("operators.password_once"))
        st.code(password, language=None)

operators = accounts.list_operators(store_url)
st.dataframe(
    [
        {
            t("col.operator"): op.name,
            t("col.role"): label("role", op.role),
            t("col.language"): LANGUAGES.get(op.language, op.language),
            t("col.active"): "✓" if op.active else "✗",
            t("col.locked_until"): display.at(op.locked_until) if op.locked(now) else "—",
            t("col.failed_logins"): op.failed_logins,
            t("col.created"): display.at(op.created_at),
        }
        for op in operators
    ],
    hide_index=True,
)

with st.form("operators.new", clear_on_submit=True):
    st.subheader(t("operators.add"))
    name_col, role_col, lang_col = st.columns(3)
    name_col.text_input(t("login.name"), key="operators.new.name", max_chars=80)
    role_col.selectbox(
        t("col.role"),
        ROLES,
        index=1,
        format_func=worded(ROLES, lambda r: label("role", r)),
        key="operators.new.role",
    )
    lang_col.selectbox(
        t("col.language"),
        list(LANGUAGES),
        format_func=LANGUAGES.__getitem__,
        key="operators.new.language",
    )
    st.form_submit_button(t("operators.add_submit"), key="operators.new.submit", on_click=add)

st.subheader(t("operators.change"))
names = [op.name for op in operators]
chosen_name = st.selectbox(t("operators.pick"), names, key="operators.pick")
chosen = next((op for op in operators if op.name == chosen_name), None)
if chosen is None:
    st.stop()
name = chosen.name
who = display.plain(name)

role_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
role_col.selectbox(
    t("col.role"),
    ROLES,
    index=ROLES.index(chosen.role),
    format_func=worded(ROLES, lambda r: label("role", r)),
    key=f"operators.role.{name}",
)


def set_role() -> None:
    role = str(st.session_state[f"operators.role.{name}"])
    act(
        lambda by: accounts.set_role(store_url, name, role, by=by),
        "operators.role_set",
        name=who,
        role=label("role", role),
    )


button_col.button(t("operators.set_role"), key="operators.set_role", on_click=set_role)

buttons = st.columns(3)
if chosen.active:
    buttons[0].button(
        t("operators.deactivate"),
        key="operators.deactivate",
        on_click=act,
        args=(
            lambda by: accounts.set_active(store_url, name, False, by=by),
            "operators.deactivated",
        ),
        kwargs={"name": who},
    )
else:
    buttons[0].button(
        t("operators.reactivate"),
        key="operators.reactivate",
        on_click=act,
        args=(
            lambda by: accounts.set_active(store_url, name, True, by=by),
            "operators.reactivated",
        ),
        kwargs={"name": who},
    )
buttons[1].button(
    t("operators.reset_password"),
    key="operators.reset_password",
    on_click=act,
    args=(
        lambda by: accounts.reset_password(store_url, name, by=by),
        "operators.password_reset",
    ),
    kwargs={"name": who, "target": name},
)
if chosen.locked(now) or chosen.failed_logins:
    buttons[2].button(
        t("operators.unlock"),
        key="operators.unlock",
        on_click=act,
        args=(
            lambda by: accounts.unlock(store_url, name, by=by),
            "operators.unlocked",
        ),
        kwargs={"name": who},
    )
