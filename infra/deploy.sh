#!/usr/bin/env bash
# `make deploy`: deploy the CloudFormation stack with the AWS CLI, showing the change set before applying it.
#
#   STACK_NAME       stack name (default bedrock-usage-control)
#   DEPLOY_PARAMS    parameter file: JSON [{"ParameterKey": …, "ParameterValue": …}] or lines Key=Value
#                    (default infra/cloudformation/parameters.json when it exists)
#   CFN_<Name>       a parameter from the environment (wins over the file), e.g. CFN_ImageUri=…
#   DEPLOY_YES=1     apply without asking (CI); otherwise the change set is shown and you confirm
#   AWS_ENDPOINT_URL / AWS_REGION / AWS_PROFILE as for any AWS CLI call (moto locally)
set -euo pipefail
cd "$(dirname "$0")/.."
AWS=${AWS:-.venv/bin/aws}
STACK_NAME=${STACK_NAME:-bedrock-usage-control}
TEMPLATE=infra/cloudformation/bedrock-usage-control.yaml
PARAMS_FILE=${DEPLOY_PARAMS:-infra/cloudformation/parameters.json}

overrides=()
if [[ -f "$PARAMS_FILE" ]]; then
  if [[ "$(head -c1 "$PARAMS_FILE")" == "[" ]]; then
    while IFS= read -r line; do overrides+=("$line"); done < <(
      python3 -c 'import json,sys; [print(f"{p[\"ParameterKey\"]}={p[\"ParameterValue\"]}") for p in json.load(open(sys.argv[1]))]' "$PARAMS_FILE")
  else
    while IFS= read -r line; do [[ -z "$line" || "$line" == \#* ]] || overrides+=("$line"); done < "$PARAMS_FILE"
  fi
fi
while IFS='=' read -r name value; do overrides+=("${name#CFN_}=${value}"); done < <(env | grep '^CFN_' || true)

echo "== stack ${STACK_NAME}: creating a change set (nothing is applied yet)"
"$AWS" cloudformation validate-template --template-body "file://${TEMPLATE}" >/dev/null
output=$("$AWS" cloudformation deploy --template-file "$TEMPLATE" --stack-name "$STACK_NAME" \
  --capabilities CAPABILITY_IAM --no-execute-changeset --no-fail-on-empty-changeset \
  ${overrides[@]+--parameter-overrides "${overrides[@]}"})
echo "$output"
change_set=$(grep -o 'arn:aws[^ ]*:changeSet/[^ ]*' <<<"$output" | head -n1 || true)
if [[ -z "$change_set" ]]; then
  echo "== no changes"
  exit 0
fi

echo "== what will change"
"$AWS" cloudformation describe-change-set --change-set-name "$change_set" \
  --query 'Changes[].ResourceChange.[Action, LogicalResourceId, ResourceType, Replacement]' --output table

if [[ "${DEPLOY_YES:-}" != "1" ]]; then
  read -r -p "apply these changes to ${STACK_NAME}? [y/N] " answer
  [[ "$answer" == "y" || "$answer" == "Y" ]] || { echo "not applied (change set left for review)"; exit 1; }
fi
status=$("$AWS" cloudformation describe-stacks --stack-name "$STACK_NAME" --query 'Stacks[0].StackStatus' --output text)
"$AWS" cloudformation execute-change-set --change-set-name "$change_set"
if [[ "$status" == "REVIEW_IN_PROGRESS" ]]; then
  "$AWS" cloudformation wait stack-create-complete --stack-name "$STACK_NAME"
else
  "$AWS" cloudformation wait stack-update-complete --stack-name "$STACK_NAME"
fi
echo "== deployed"
"$AWS" cloudformation describe-stacks --stack-name "$STACK_NAME" --query 'Stacks[0].Outputs' --output table
cat <<EON
Next, once per release: apply the schema migrations with the one-off task
  aws ecs run-task --cluster <ClusterName> --launch-type FARGATE --task-definition <MigrateTaskDefinitionArn> \\
    --network-configuration 'awsvpcConfiguration={subnets=[<a private subnet>],securityGroups=[<ServiceSecurityGroupId>]}'
and the producer side is in the stack (the rule); see the README's deployment chapter.
EON
