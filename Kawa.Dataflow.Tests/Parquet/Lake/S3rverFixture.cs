using System.Diagnostics;
using Amazon.Runtime;
using Amazon.S3;

namespace Kawa.Dataflow.Tests.Parquet.Lake;

/// <summary>A local S3 (s3rver from tools/node) on a free loopback port with a temporary data directory.</summary>
internal sealed class S3rverFixture : IAsyncDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly Process _process;
    private readonly TempDirectory _data;

    private S3rverFixture(Process process, TempDirectory data, int port)
    {
        _process = process;
        _data = data;
        ServiceUrl = $"http://127.0.0.1:{port}";
    }

    public string ServiceUrl { get; }

    /// <summary>s3rver's data directory (pending multipart uploads live under &lt;bucket&gt;/.../uploads).</summary>
    public string DataPath => _data.Path;

    public static async Task<S3rverFixture> StartAsync(params string[] buckets)
    {
        var data = new TempDirectory();
        var info = new ProcessStartInfo("node")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(RepoPaths.Root, "Kawa.Dataflow.Tests", "Parquet", "Lake", "s3rver", "run.js"));
        info.ArgumentList.Add(data.Path);
        foreach (var bucket in buckets)
        {
            info.ArgumentList.Add(bucket);
        }
        info.Environment["NODE_PATH"] = RepoPaths.NodeModules;
        var process = Process.Start(info)!;
        using var timeout = new CancellationTokenSource(Patience);
        var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
        if (line is null || !line.StartsWith("READY ", StringComparison.Ordinal))
        {
            var stderr = await process.StandardError.ReadToEndAsync(timeout.Token);
            process.Kill(entireProcessTree: true);
            process.Dispose();
            data.Dispose();
            throw new InvalidOperationException($"s3rver did not start (is tools/node installed? run scripts/ensure-test-deps.sh): {line} {stderr}");
        }
        return new S3rverFixture(process, data, int.Parse(line["READY ".Length..], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>A client as the FaultHost builds it: path-style, dummy credentials, checksums only when required.</summary>
    public AmazonS3Client CreateClient() => new(Credentials, CreateConfig());

    /// <summary>s3rver's fixed credentials.</summary>
    public static AWSCredentials Credentials { get; } = new BasicAWSCredentials("S3RVER", "S3RVER");

    /// <summary>The configuration of <see cref="CreateClient"/>, for clients of other types.</summary>
    public AmazonS3Config CreateConfig() => new()
    {
        ServiceURL = ServiceUrl,
        ForcePathStyle = true,
        AuthenticationRegion = "us-east-1",
        RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
        ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        MaxErrorRetry = 0,
    };

    public async ValueTask DisposeAsync()
    {
        try
        {
            _process.StandardInput.Close();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
            _process.Dispose();
            _data.Dispose();
        }
    }
}
