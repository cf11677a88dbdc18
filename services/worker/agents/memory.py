"""A VP that remembers: which agent conversation a run continues, and keeping
the VP's conversation in its registry session (specs/agent-protocol-v1.md §8)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from services.common.contracts.vp.v1 import mission_pb2, session_pb2

log = logging.getLogger("vp.worker.memory")

SessionReader = Callable[[], Awaitable[session_pb2.VpSession | None]]
ConversationWriter = Callable[[session_pb2.AgentConversation], Awaitable[session_pb2.VpSession | None]]


def conversation_for(mission: mission_pb2.Mission, session_conversation: session_pb2.AgentConversation | None,
                     agent: str) -> str:
    """The conversation id a run of ``mission`` continues ("" for a fresh one)."""
    if not agent:
        return ""
    own = mission.conversation if mission.HasField("conversation") else None
    if own is not None and own.conversation_id and own.agent == agent:
        return own.conversation_id
    if mission.envelope.fresh_context:
        return ""
    if session_conversation is not None and session_conversation.conversation_id \
            and session_conversation.agent == agent:
        return session_conversation.conversation_id
    return ""


class ConversationMemory:
    """The worker's view of its session's conversation. The registry is the
    authority: it is read before each run (an operator may have reset it) and
    written with the term's fencing."""

    def __init__(self, agent: str, *, read: SessionReader | None = None,
                 write: ConversationWriter | None = None) -> None:
        self.agent = agent
        self._read = read
        self._write = write
        self.current: session_pb2.AgentConversation | None = None

    def load(self, session: session_pb2.VpSession) -> None:
        self.current = session.conversation if session.HasField("conversation") else None

    async def for_run(self, mission: mission_pb2.Mission) -> str:
        if not self.agent:
            return ""
        if self._read is not None and not mission.envelope.fresh_context:
            try:
                session = await self._read()
            except Exception as exc:  # noqa: BLE001 - fall back to what we know
                log.warning("cannot read the session's conversation (%s); using the cached one", exc)
            else:
                if session is not None:
                    self.load(session)
        return conversation_for(mission, self.current, self.agent)

    async def remember(self, conversation: session_pb2.AgentConversation) -> bool:
        """Store the VP's conversation (fenced by the registry); False if it was not stored."""
        if self._write is None:
            self.current = conversation
            return True
        try:
            session = await self._write(conversation)
        except Exception as exc:  # noqa: BLE001 - the mission's own record still has it
            log.warning("cannot store conversation %s in the session: %s", conversation.conversation_id, exc)
            return False
        if session is not None:
            self.load(session)
        return True
