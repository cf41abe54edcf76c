"""The platforms' published sending limits, per credential: the one table the configuration
validates against and the adapters start from ([[channels]] may only lower a rate or a size and
only lengthen a penalty). Plain numbers and no imports, so the configuration validates without
loading an adapter."""

from __future__ import annotations

from typing import Any

PLATFORM_LIMITS: dict[str, dict[str, Any]] = {
    # WeCom group robot: 20 a minute; markdown 4,096 bytes (the adapter holds plain text to
    # 2,048 within it).
    "wecom_robot": {"per_minute": 20, "max_body_bytes": 4096, "penalty_seconds": 60.0},
    # DingTalk custom robot: 20 a minute, then a 10-minute penalty (130101); < 20,000 bytes.
    "dingtalk_robot": {"per_minute": 20, "max_body_bytes": 19_999, "penalty_seconds": 600.0},
    # Feishu custom bot: 100 a minute, 5 a second, keeping clear of the first minute of each
    # half hour (when everyone's reminders go out); 20 KB.
    "feishu_bot": {"per_minute": 100, "per_second": 5, "max_body_bytes": 20 * 1024,
                   "penalty_seconds": 60.0, "avoid": ((0, 60), (1800, 1860))},
    # Feishu app: 1,000 a minute, 50 a second, 5 a second per group; text 150 KB.
    "feishu_app": {"per_minute": 1000, "per_second": 50, "per_group_per_second": 5,
                   "max_body_bytes": 150 * 1024, "penalty_seconds": 60.0},
    # The simulated official channel of the demo and the tests (WeCom-like).
    "sim_official": {"per_minute": 20, "max_body_bytes": 2048, "penalty_seconds": 600.0},
}
