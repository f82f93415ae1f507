"""Create the media bucket if it is missing (docker compose's s3-init step); safe to run again."""

from __future__ import annotations

import os
import sys
import time

import boto3
from botocore.exceptions import BotoCoreError, ClientError


def main() -> int:
    bucket = os.environ["AWS_STORAGE_BUCKET_NAME"]
    region = os.environ.get("AWS_S3_REGION_NAME") or "us-east-1"
    client = boto3.client(
        "s3",
        endpoint_url=os.environ.get("AWS_S3_ENDPOINT_URL") or None,
        region_name=region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or None,
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
    )
    for attempt in range(30):
        try:
            client.head_bucket(Bucket=bucket)
            print(f"bucket {bucket} exists")
            return 0
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
            extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            client.create_bucket(Bucket=bucket, **extra)
            print(f"bucket {bucket} created")
            return 0
        except BotoCoreError as exc:  # the store is still starting
            print(f"waiting for the object store ({exc}); attempt {attempt + 1}/30", file=sys.stderr)
            time.sleep(2)
    return 1


if __name__ == "__main__":
    sys.exit(main())
