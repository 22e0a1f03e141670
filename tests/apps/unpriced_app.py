"""A call to a model no price list knows (a self-hosted model behind an OpenAI-compatible API)."""

from __future__ import annotations

import os

import openai

import featurecost

client = openai.OpenAI(base_url=f"{os.environ['FEATURECOST_DEMO_LLM_URL']}/v1", api_key="sk-test", max_retries=0)
with featurecost.attribute(feature="private-model", tenant="acme"):
    client.chat.completions.create(model="acme-private-llm", messages=[{"role": "user", "content": "hello"}])
with featurecost.attribute(feature="private-model", tenant="acme"):
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
