// What the test page loads: Uppy's core and S3 plugin, as globals for the test to drive.
import Uppy from "@uppy/core";
import AwsS3 from "@uppy/aws-s3";

window.Uppy = Uppy;
window.AwsS3 = AwsS3;
