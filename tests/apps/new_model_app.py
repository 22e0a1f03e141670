"""One call to the model named by FEATURECOST_TEST_MODEL (a model newer than the pinned price data)."""

from __future__ import annotations

import os

import openai

import featurecost

client = openai.OpenAI(base_url=f"{os.environ['FEATURECOST_DEMO_LLM_URL']}/v1", api_key="sk-test", max_retries=0)
with featurecost.attribute(feature="new-model", tenant="acme"):
    client.chat.completions.create(
        model=os.environ["FEATURECOST_TEST_MODEL"], messages=[{"role": "user", "content": "hi"}]
    )
