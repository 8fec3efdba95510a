namespace Kawa.Dataflow.Cli;

/// <summary>
/// The process exit codes of <c>kawa</c>: stable, documented in docs/cli.md, for scripts and supervisors to act on.
/// </summary>
internal static class ExitCodes
{
    /// <summary>Success: the command did what it was asked (a finite run drained cleanly; the config is valid).</summary>
    public const int Ok = 0;

    /// <summary>The pipeline failed at run time (a fatal handler or destination error); unsettled messages were negatively acked.</summary>
    public const int RuntimeFailure = 1;

    /// <summary>The command line is wrong: unknown command or option, missing argument.</summary>
    public const int Usage = 2;

    /// <summary>The configuration is invalid (unreadable, not JSON, or fails validation); nothing was started.</summary>
    public const int ConfigInvalid = 3;

    /// <summary>A server (NATS, S3) could not be reached or refused the credentials.</summary>
    public const int ConnectionFailure = 4;

    /// <summary>A graceful stop did not finish within <c>limits.drainTimeout</c>; what was not durable was negatively acked for redelivery.</summary>
    public const int DrainTimeout = 5;

    /// <summary>The source cannot do what the command asks (<c>--drain</c> with a <c>follow</c> file or a core <c>nats</c> source, which never catch up for good, or several filter subjects on a nats-server older than 2.10); nothing was started.</summary>
    public const int NotAvailable = 6;

    /// <summary>A second SIGINT/SIGTERM during a drain (exit at once), or a signal while still starting: 128 + SIGINT, the shell convention.</summary>
    public const int Interrupted = 130;
}
