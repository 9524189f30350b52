#!/usr/bin/env bash
# `make deploy`: deploy the CloudFormation stack with the AWS CLI, showing the change set before applying it;
# then a forwarder stack (region-forwarder.yaml) in each other region of the stack's SourceRegions, so the calls
# made there are counted too, and none in a region taken off that list.
#
#   STACK_NAME       stack name (default bedrock-usage-control); forwarder stacks are ${STACK_NAME}-forwarder
#   DEPLOY_PARAMS    parameter file: JSON [{"ParameterKey": …, "ParameterValue": …}] or lines Key=Value
#                    (default infra/cloudformation/parameters.json when it exists)
#   CFN_<Name>       a parameter from the environment (wins over the file), e.g. CFN_ImageUri=…,
#                    CFN_SourceRegions=eu-west-1,eu-central-1
#   DEPLOY_YES=1     apply without asking (CI); otherwise each change set is shown and you confirm
#   DEPLOY_BUCKET    S3 bucket for a template over CloudFormation's 51,200-byte inline limit (the main one is),
#                    in the stack's region (default bedrock-usage-control-templates-<account>-<region>, created
#                    private on first use)
#   AWS_ENDPOINT_URL / AWS_REGION / AWS_PROFILE as for any AWS CLI call (moto locally); AWS_REGION is the
#                    main stack's region (the stream's), the "home" region
set -euo pipefail
cd "$(dirname "$0")/.."
AWS=${AWS:-.venv/bin/aws}
STACK_NAME=${STACK_NAME:-bedrock-usage-control}
TEMPLATE=infra/cloudformation/bedrock-usage-control.yaml
FORWARDER_TEMPLATE=infra/cloudformation/region-forwarder.yaml
FORWARDER_STACK="${STACK_NAME}-forwarder"
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

confirm() {  # confirm QUESTION: yes with DEPLOY_YES=1, else ask
  [[ "${DEPLOY_YES:-}" == "1" ]] && return 0
  read -r -p "$1 [y/N] " answer
  [[ "$answer" == "y" || "$answer" == "Y" ]]
}

# template_bucket REGION: the bucket that carries templates too big to send inline, created private if missing.
template_bucket() {
  local region=$1 bucket
  bucket=${DEPLOY_BUCKET:-bedrock-usage-control-templates-$("$AWS" sts get-caller-identity --query Account \
    --output text)-${region}}
  if ! "$AWS" s3api head-bucket --region "$region" --bucket "$bucket" >/dev/null 2>&1; then
    local where=()  # us-east-1 takes no location constraint
    [[ "$region" == "us-east-1" ]] || where=(--create-bucket-configuration "LocationConstraint=${region}")
    "$AWS" s3api create-bucket --region "$region" --bucket "$bucket" ${where[@]+"${where[@]}"} >/dev/null
    "$AWS" s3api put-public-access-block --region "$region" --bucket "$bucket" --public-access-block-configuration \
      BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
  fi
  echo "$bucket"
}

# deploy STACK TEMPLATE REGION [Key=Value ...]: change set, shown, confirmed, executed, waited for.
# REGION empty: the CLI's region (the main stack's).
deploy() {
  local stack=$1 template=$2 at=() region=${3:-$HOME_REGION}
  if [[ -n "$3" ]]; then at=(--region "$3"); fi
  shift 3
  echo "== stack ${stack}${at[1]:+ in ${at[1]}}: creating a change set (nothing is applied yet)"
  # CloudFormation takes a template of up to 51,200 bytes inline; a bigger one (the main stack) goes through S3.
  local body=(--template-body "file://${template}") upload=()
  if (( $(wc -c <"$template") > 51200 )); then
    local bucket key
    bucket=$(template_bucket "$region")
    key="${stack}/$(basename "$template")"
    "$AWS" s3 cp --region "$region" --only-show-errors "$template" "s3://${bucket}/${key}"
    body=(--template-url "https://${bucket}.s3.${region}.amazonaws.com/${key}")
    upload=(--s3-bucket "$bucket" --s3-prefix "$stack")
  fi
  "$AWS" cloudformation validate-template ${at[@]+"${at[@]}"} "${body[@]}" >/dev/null
  local output change_set status
  if ! output=$("$AWS" cloudformation deploy ${at[@]+"${at[@]}"} --template-file "$template" --stack-name "$stack" \
      ${upload[@]+"${upload[@]}"} --capabilities CAPABILITY_IAM --no-execute-changeset --no-fail-on-empty-changeset \
      ${@+--parameter-overrides "$@"} 2>&1); then
    # Some CloudFormation endpoints (moto) refuse an empty change set outright instead of failing it.
    grep -q "No updates are to be performed" <<<"$output" || { echo "$output" >&2; exit 1; }
  fi
  echo "$output"
  change_set=$(grep -o 'arn:aws[^ ]*:changeSet/[^ ]*' <<<"$output" | head -n1 || true)
  if [[ -z "$change_set" ]]; then
    echo "== no changes"
    return 0
  fi
  echo "== what will change"
  "$AWS" cloudformation describe-change-set ${at[@]+"${at[@]}"} --change-set-name "$change_set" \
    --query 'Changes[].ResourceChange.[Action, LogicalResourceId, ResourceType, Replacement]' --output table
  confirm "apply these changes to ${stack}${at[1]:+ in ${at[1]}}?" || {
    echo "not applied (change set left for review)"; exit 1; }
  status=$("$AWS" cloudformation describe-stacks ${at[@]+"${at[@]}"} --stack-name "$stack" \
    --query 'Stacks[0].StackStatus' --output text)
  "$AWS" cloudformation execute-change-set ${at[@]+"${at[@]}"} --change-set-name "$change_set"
  if [[ "$status" == "REVIEW_IN_PROGRESS" ]]; then
    "$AWS" cloudformation wait stack-create-complete ${at[@]+"${at[@]}"} --stack-name "$stack"
  else
    "$AWS" cloudformation wait stack-update-complete ${at[@]+"${at[@]}"} --stack-name "$stack"
  fi
  echo "== deployed ${stack}${at[1]:+ in ${at[1]}}"
}

stack_field() {  # stack_field QUERY: a field of the main stack (empty when it or the field does not exist)
  local value
  value=$("$AWS" cloudformation describe-stacks --stack-name "$STACK_NAME" --query "Stacks[0].$1" \
    --output text 2>/dev/null || true)
  [[ "$value" == "None" ]] || echo "$value"
}

# The CLI's own region (AWS_DEFAULT_REGION, the profile's): where the main stack goes.
HOME_REGION=$("$AWS" configure list | awk '$1 == "region" && $2 !~ /^</ {print $2}')
[[ -n "$HOME_REGION" ]] || { echo "no AWS region: set AWS_DEFAULT_REGION or the profile's region" >&2; exit 1; }
SOURCE_REGIONS_QUERY="Parameters[?ParameterKey=='SourceRegions'].ParameterValue"
previous=$(stack_field "$SOURCE_REGIONS_QUERY")  # before this deploy: the regions that have a forwarder stack
deploy "$STACK_NAME" "$TEMPLATE" "" ${overrides[@]+"${overrides[@]}"}
"$AWS" cloudformation describe-stacks --stack-name "$STACK_NAME" --query 'Stacks[0].Outputs' --output table

# The forwarders: the calls made in a region reach EventBridge in that region only. The stack's parameter is
# the list in force (one not given keeps its value); the home bus and the role are the stack's (its outputs
# HomeEventBusArn and ForwardingRoleArn, worked out here from the stack itself).
IFS=: read -r _ partition _ home account _ <<<"$(stack_field StackId)"
home_bus="arn:${partition}:events:${home}:${account}:event-bus/default"
role_name=$("$AWS" cloudformation list-stack-resources --stack-name "$STACK_NAME" --output text \
  --query "StackResourceSummaries[?LogicalResourceId=='ForwardingRole'].PhysicalResourceId")
role=$("$AWS" iam get-role --role-name "$role_name" --query Role.Arn --output text)
# "r1, r2,r3" (the stack's AllowedPattern admits nothing else) as arrays
IFS=',' read -ra listed <<<"$(stack_field "$SOURCE_REGIONS_QUERY" | tr -d '[:space:]')"
IFS=',' read -ra before <<<"$(tr -d '[:space:]' <<<"$previous")"
for region in ${listed[@]+"${listed[@]}"}; do
  if [[ "$region" == "$home" ]]; then
    echo "== ${region}: the stack's own region, counted by its rule (no forwarder)"
    continue
  fi
  deploy "$FORWARDER_STACK" "$FORWARDER_TEMPLATE" "$region" "HomeEventBusArn=${home_bus}" "ForwardingRoleArn=${role}"
done
for region in ${before[@]+"${before[@]}"}; do
  if [[ "$region" == "$home" || " ${listed[*]-} " == *" ${region} "* ]]; then
    continue
  fi
  echo "== ${region}: no longer in SourceRegions; its calls will not be counted"
  if confirm "delete stack ${FORWARDER_STACK} in ${region}?"; then
    "$AWS" cloudformation delete-stack --region "$region" --stack-name "$FORWARDER_STACK"
    "$AWS" cloudformation wait stack-delete-complete --region "$region" --stack-name "$FORWARDER_STACK"
    echo "== deleted ${FORWARDER_STACK} in ${region}"
  else
    echo "== ${FORWARDER_STACK} left in ${region} (it still forwards that region's calls)"
  fi
done

cat <<EON
Next, once per release: apply the schema migrations with the one-off task
  aws ecs run-task --cluster <ClusterName> --launch-type FARGATE --task-definition <MigrateTaskDefinitionArn> \\
    --network-configuration 'awsvpcConfiguration={subnets=[<a private subnet>],securityGroups=[<ServiceSecurityGroupId>]}'
and the producer side is in the stack (the rule, and a forwarder in each other region of SourceRegions);
see the README's deployment chapter.
EON
