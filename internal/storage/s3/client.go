package s3

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// ClientConfig says how to reach the service.
type ClientConfig struct {
	// Endpoint is the service's URL, such as "http://127.0.0.1:9000";
	// empty means AWS.
	Endpoint string
	// Region; empty means the one of the AWS environment or profile, or
	// "us-east-1" with an Endpoint.
	Region string
	// PathStyle addresses buckets as ENDPOINT/BUCKET rather than
	// BUCKET.ENDPOINT, as most S3-compatible services want.
	PathStyle bool
	// AccessKeyID, SecretAccessKey and SessionToken are static
	// credentials. Without them the SDK's default chain is used
	// (environment, shared files and AWS_PROFILE, web identity, container
	// and instance roles).
	AccessKeyID, SecretAccessKey, SessionToken string
	// Profile selects a profile of the shared AWS files.
	Profile string
}

// NewClient returns an S3 client for c, with the SDK's retries off (wrap
// the store in wrap.Retry).
func NewClient(ctx context.Context, c ClientConfig) (*awss3.Client, error) {
	var opts []func(*config.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.AccessKeyID != "" || c.SecretAccessKey != "" {
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return nil, errors.New("s3: credentials need both an access key ID and a secret access key")
		}
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		if c.Endpoint == "" {
			return nil, errors.New("s3: no region: set ?region= or AWS_REGION")
		}
		cfg.Region = "us-east-1"
	}
	return awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.PathStyle
		o.Retryer = aws.NopRetryer{}
		// Multipart objects have no whole-object checksum to validate;
		// that is expected, not worth a log line per Get.
		o.DisableLogOutputChecksumValidationSkipped = true
	}), nil
}
