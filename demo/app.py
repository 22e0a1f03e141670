"""A small SaaS app that uses the real ``openai`` and ``anthropic`` SDKs.

It contains no instrumentation code: only ``featurecost.attribute(...)`` to say which
feature, tenant and user each action serves. Tracing is switched on from outside::

    opentelemetry-instrument python -m demo.app

Three features, each a chain of LLM calls per user action:

* ``support-bot`` (OpenAI, multi-turn conversations = sessions, long cached system prompt)
* ``summarize-thread`` (Anthropic: map chunks with Haiku, reduce with Sonnet streamed, cached instructions)
* ``draft-email`` (OpenAI, async: outline → draft → polish streamed)
"""

from __future__ import annotations

import asyncio
import os

import anthropic
import openai

import featurecost

BASE_URL = os.environ.get("FEATURECOST_DEMO_LLM_URL", "http://127.0.0.1:8090")

TENANTS = [("acme", "enterprise", 3), ("globex", "pro", 2), ("initech", "free", 1)]

# Long enough (>1024 tokens) for the providers' prompt caching to apply.
KNOWLEDGE_BASE = "\n".join(
    f"Article {i}: How to handle {topic} for customers on any plan; check the account, "
    f"confirm the invoice period, explain the policy in plain words and offer a next step."
    for i, topic in enumerate(["refunds", "seat changes", "SSO setup", "API limits", "data export"] * 14)
)
SUMMARY_INSTRUCTIONS = "You summarize customer support threads for account managers. " * 90


def support_bot(client: openai.OpenAI, tenant: str, plan: str, user: str, conversation: str) -> None:
    history = [{"role": "system", "content": "You are the support assistant.\n" + KNOWLEDGE_BASE}]
    questions = [
        "My invoice looks wrong.",
        f"We are {tenant}; can you check seat count?",
        "Thanks, anything else?",
    ]
    for turn, question in enumerate(questions[: 2 + len(conversation) % 2]):
        # each turn is one user action; the conversation is the session
        with featurecost.attribute(
            feature="support-bot", tenant=tenant, plan=plan, user=user, session=conversation, turn=str(turn)
        ):
            history.append({"role": "user", "content": question})
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=history, max_tokens=300)  # type: ignore[arg-type]
            history.append({"role": "assistant", "content": reply.choices[0].message.content or ""})


def summarize_thread(client: anthropic.Anthropic, tenant: str, plan: str, user: str, thread: list[str]) -> str:
    system = [{"type": "text", "text": SUMMARY_INSTRUCTIONS, "cache_control": {"type": "ephemeral"}}]
    with featurecost.attribute(feature="summarize-thread", tenant=tenant, plan=plan, user=user):
        partials = []
        for chunk in thread:
            message = client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=200,
                system=system,  # type: ignore[arg-type]
                messages=[{"role": "user", "content": f"Summarize:\n{chunk}"}],
            )
            partials.append(message.content[0].text)  # type: ignore[union-attr]
        # the final summary streams to the account manager's screen
        with client.messages.stream(
            model="claude-sonnet-4-6",
            max_tokens=400,
            messages=[{"role": "user", "content": "Combine these summaries:\n" + "\n".join(partials)}],
        ) as stream:
            return stream.get_final_text()


@featurecost.attribute(feature="draft-email")
async def draft_email(client: openai.AsyncOpenAI, topic: str) -> str:
    outline = await client.chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": f"Outline an email about {topic}."}]
    )
    draft = await client.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[
            {
                "role": "user",
                "content": f"Write the email from this outline:\n{outline.choices[0].message.content}",
            }
        ],
    )
    polished = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"Polish:\n{draft.choices[0].message.content}"}],
        max_tokens=250,
        stream=True,
    )
    return "".join([chunk.choices[0].delta.content or "" async for chunk in polished if chunk.choices])


async def draft_emails(tenant: str, plan: str, user: str, topics: list[str]) -> None:
    client = openai.AsyncOpenAI(base_url=f"{BASE_URL}/v1", api_key="sk-demo")
    async with client:
        for topic in topics:
            with featurecost.attribute(tenant=tenant, plan=plan, user=user):
                await draft_email(client, topic)


def main() -> None:
    oai = openai.OpenAI(base_url=f"{BASE_URL}/v1", api_key="sk-demo", max_retries=0)
    claude = anthropic.Anthropic(base_url=BASE_URL, api_key="sk-ant-demo", max_retries=0)
    actions = 0
    for tenant, plan, users in TENANTS:
        for u in range(users):
            user = f"{tenant}-user-{u + 1}"
            for c in range(2):
                support_bot(oai, tenant, plan, user, conversation=f"{user}-conv-{c + 1}")
            thread = [f"Message {i} from {user}: the export failed twice on {tenant}'s account." for i in range(2 + u)]
            summarize_thread(claude, tenant, plan, user, thread)
            asyncio.run(draft_emails(tenant, plan, user, [f"renewal for {tenant}", "new SSO feature"][: 1 + u % 2]))
            actions += 1
    print(f"demo app: done ({actions} users served)")


if __name__ == "__main__":
    main()
