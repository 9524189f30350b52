"""docker-compose's one-off set-up on moto: the stream and the sender's SES identity (the schema is
`bedrockctl db migrate`, run just before). Idempotent. docker-compose.yml mounts this file alone into the
product image and runs it as a script: it imports nothing from the repository."""

import time

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError


def main() -> None:
    for _ in range(60):  # moto installs itself at start: wait for it
        try:
            kinesis = boto3.client("kinesis")
            kinesis.list_streams()
            break
        except EndpointConnectionError:
            time.sleep(1)
    try:
        kinesis.create_stream(StreamName="bedrock-usage-events", ShardCount=2)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceInUseException":
            raise
    boto3.client("ses").verify_email_identity(EmailAddress="bedrock-usage@example.com")
    print("stream and SES identity ready")


if __name__ == "__main__":
    main()
