"""Object storage through s3fs against a real moto S3 server on 127.0.0.1."""

from __future__ import annotations

import json

import pandas as pd
import s3fs

from headrace.io import read_files, write_parquet


def test_parquet_and_ndjson_on_s3(s3_bucket: str, moto_endpoint: str) -> None:
    df = pd.DataFrame({"order_id": [1, 2, 3], "day": ["d1", "d1", "d2"]})
    assert write_parquet(df, f"s3://{s3_bucket}/lake/sales", partition_by="day") == 3
    got = read_files(f"s3://{s3_bucket}/lake/sales", format="parquet").data
    assert sorted(got["order_id"].tolist()) == [1, 2, 3]

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": moto_endpoint})
    lines = [json.dumps({"order_id": 1}), "{broken", json.dumps({"order_id": 2})]
    fs.pipe(f"{s3_bucket}/raw/orders.ndjson", ("\n".join(lines)).encode())
    res = read_files(f"s3://{s3_bucket}/raw/*.ndjson",
                     quarantine_path=f"s3://{s3_bucket}/quarantine/orders.parquet")
    assert res.data["order_id"].tolist() == [1, 2]
    assert res.quarantine.to_pylist()[0]["file"] == f"s3://{s3_bucket}/raw/orders.ndjson"
    assert res.quarantine.to_pylist()[0]["line"] == 2
    assert fs.exists(f"{s3_bucket}/quarantine/orders.parquet")
    assert res.rows_read == 3
