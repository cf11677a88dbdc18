"""A small agent speaking agent protocol v1 through the helper module; the
objective picks what it does (``proto:<name>``)."""

from __future__ import annotations

import os
import sys
import time

from services.worker.agents import vp_agent


def main() -> None:
    agent = vp_agent.connect()
    objective = agent.context.get("objective", "")
    mode = objective.split("proto:", 1)[1].split()[0] if "proto:" in objective else "plain"
    if mode == "plain":
        print("plain agent: no protocol")
        return
    if mode == "full":
        agent.progress("reading", percent=10)
        agent.usage(input_tokens=1000, cached_input_tokens=400, output_tokens=200, cost_usd=0.01, model="m-1")
        agent.usage(input_tokens=10, output_tokens=5, cost_usd=0.001, model="m-2")
        with open(os.path.join(os.environ["VP_MISSION_DIR"], "report.md"), "w") as fh:
            fh.write("# report\n")
        agent.artifact("report.md", "the report")
        agent.artifact("/etc/passwd")
        agent.conversation("conv-full-1")
        agent.result("completed", summary="all done")
    elif mode == "ask":
        answer = agent.answer
        if answer is None:
            agent.conversation("conv-ask-1")
            agent.needs_input("Which color?", choices=["red", "blue"])
            return
        if os.environ.get("VP_AGENT_ANSWER") != answer or agent.conversation_id != "conv-ask-1":
            agent.result("failed", error_code="BAD_CONTEXT", error_message=f"{answer!r} {agent.conversation_id!r}")
            return
        agent.result("completed", summary=f"painted it {answer}")
    elif mode == "linger":
        agent.needs_input("Still there?")
        time.sleep(3600)
    elif mode == "spend":
        while True:
            agent.usage(input_tokens=400, output_tokens=100)
            time.sleep(0.05)
    elif mode == "garbage":
        fd = int(os.environ["VP_AGENT_EVENTS_FD"])
        os.write(fd, b"this is not json\n{\"type\": \n[1,2]\n{\"v\":1}\n")
        agent.progress("one valid event")
        os.write(fd, b"{\"type\":\"result\",\"status\":\"compl")
    elif mode == "future":
        agent.send("telemetry", cpu=1)
        fd = int(os.environ["VP_AGENT_EVENTS_FD"])
        os.write(fd, b'{"v":2,"type":"result","status":"failed"}\n')
        os.write(fd, b'{"v":1,"type":"result","status":"completed","summary":"future-proof","new_key":[1]}\n')
    elif mode == "blocked":
        agent.result("blocked", summary="need credentials", question="Which API key should I use?")
    elif mode == "fail":
        agent.result("failed", summary="nope", error_code="lower-case", error_message="bad code")
        sys.exit(3)


if __name__ == "__main__":
    main()
