"""`[tickets.open311]`: how the district's GeoReport v2 endpoint presents itself.

```toml
[tickets.open311]
jurisdiction_id = "dongli.tj.gov.cn"   # optional; when set, another one is a 404
public_read = true                      # GET without an api_key, as public servers do
answer = "id"                           # "id": realtime; "token": batch (published once registered)
url = "https://open311.example.gov.cn/open311/v2"  # discovery's endpoint url; default: as asked
type = "production"                     # or "test": discovery says whether it is acted upon
contact = "..."
key_service = "..."
```
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Open311Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jurisdiction_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    public_read: bool = True
    # "id": a POST answers the service_request_id at once (services are `realtime`);
    # "token": it answers a token, and a request is published (listed, and its token
    # resolved) once the command center registered it (立案; services are `batch`).
    answer: Literal["id", "token"] = "id"
    url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    type: Literal["production", "test"] = "production"
    contact: str = "区网格化综合指挥中心 (the district's command center); see its web site"
    key_service: str = (
        "api_key 由区指挥中心发放: an app's operator asks the command center, which "
        "creates one with `gridhall tickets open311-key create --name APP`"
    )
