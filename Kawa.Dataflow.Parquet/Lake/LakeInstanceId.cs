using System.Security.Cryptography;
using System.Text;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>The writer identity embedded in temporary names and file names.</summary>
/// <remarks>
/// An instance id must be stable across restarts of the same daemon (so its startup cleanup finds the temporary
/// files a crash left) and unique among writers that run at the same time against the same lake (cleanup removes
/// every temporary file of its own id). Ids are reduced to <c>[A-Za-z0-9_-]</c>, at most
/// <see cref="MaxLength"/> characters; any other character becomes <c>_</c>.
/// </remarks>
public static class LakeInstanceId
{
    /// <summary>The longest instance id kept; longer ids are cut.</summary>
    public const int MaxLength = 48;

    /// <summary>Reduces <paramref name="id"/> to the file-name-safe alphabet.</summary>
    /// <param name="id">A raw id such as a host name.</param>
    /// <returns>The sanitized id; never empty.</returns>
    /// <exception cref="ArgumentException"><paramref name="id"/> is null, empty or whitespace.</exception>
    public static string Sanitize(string id)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(id);
        var length = Math.Min(id.Length, MaxLength);
        return string.Create(length, id, static (span, source) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                var c = source[i];
                span[i] = char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '_';
            }
        });
    }

    /// <summary>
    /// The default id: the host name plus a short hash of <paramref name="scope"/> (the lake root or bucket and
    /// prefix) and the program's name, so restarts of one daemon get the same id and two daemons with different
    /// lakes or programs on one host get different ones.
    /// </summary>
    /// <param name="scope">What the writer writes to, e.g. its root directory.</param>
    /// <remarks>
    /// Two processes of the same program writing to the same lake on the same host get the same default id and
    /// must set distinct ids explicitly. In containers whose host name changes on every restart (a Kubernetes
    /// Deployment), set a stable id (for example the StatefulSet pod name) or rely on the age rule of cleanup.
    /// </remarks>
    public static string CreateDefault(string scope)
    {
        var program = System.Reflection.Assembly.GetEntryAssembly()?.GetName().Name ?? "kawa";
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(program + "\n" + scope));
        var host = Sanitize(string.IsNullOrWhiteSpace(Environment.MachineName) ? "host" : Environment.MachineName);
        if (host.Length > MaxLength - 9)
        {
            host = host[..(MaxLength - 9)];
        }
        return $"{host}-{Convert.ToHexStringLower(hash.AsSpan(0, 4))}";
    }
}
