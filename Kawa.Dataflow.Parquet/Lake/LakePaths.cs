namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>Checks relative lake paths, so nothing a caller passes can leave the lake root.</summary>
internal static class LakePaths
{
    /// <summary>Validates <paramref name="relativePath"/>: relative, <c>/</c>-separated, no empty, <c>.</c>, <c>..</c> or hidden segments, no control characters or backslashes.</summary>
    public static void Validate(string relativePath, string parameterName = "relativePath")
    {
        ArgumentException.ThrowIfNullOrEmpty(relativePath, parameterName);
        var problem = Check(relativePath, allowTrailingSlash: false);
        if (problem is not null)
        {
            throw new ArgumentException($"Lake path '{Printable(relativePath)}' is invalid: {problem}.", parameterName);
        }
    }

    /// <summary>Validates a listing prefix: like a path, but may be empty and may end with <c>/</c>.</summary>
    public static void ValidatePrefix(string prefix, string parameterName = "prefix")
    {
        ArgumentNullException.ThrowIfNull(prefix, parameterName);
        if (prefix.Length == 0)
        {
            return;
        }
        var problem = Check(prefix, allowTrailingSlash: true);
        if (problem is not null)
        {
            throw new ArgumentException($"Lake prefix '{Printable(prefix)}' is invalid: {problem}.", parameterName);
        }
    }

    private static string? Check(string path, bool allowTrailingSlash)
    {
        if (path[0] == '/' || Path.IsPathRooted(path))
        {
            return "it must be relative to the lake root";
        }
        foreach (var c in path)
        {
            if (c == '\\')
            {
                return "use '/' as the separator; '\\' is not allowed";
            }
            if (char.IsControl(c))
            {
                return $"it contains the control character U+{(int)c:X4}";
            }
        }
        var segments = path.Split('/');
        for (var i = 0; i < segments.Length; i++)
        {
            var segment = segments[i];
            if (segment.Length == 0)
            {
                if (allowTrailingSlash && i == segments.Length - 1)
                {
                    continue;
                }
                return "it has an empty segment";
            }
            if (segment is "." or "..")
            {
                return $"the segment '{segment}' is not allowed";
            }
            if (segment[0] == '.')
            {
                return $"the segment '{segment}' starts with '.', which readers treat as hidden and cleanup as temporary";
            }
        }
        return null;
    }

    /// <summary>The full path of <paramref name="relativePath"/> under <paramref name="fullRoot"/>; throws if it is not strictly inside (defence in depth).</summary>
    public static string Resolve(string fullRoot, string relativePath)
    {
        var full = Path.GetFullPath(Path.Combine(fullRoot, relativePath));
        if (!IsUnder(fullRoot, full))
        {
            throw new ArgumentException($"Lake path '{Printable(relativePath)}' resolves to '{full}', outside the lake root '{fullRoot}'.", nameof(relativePath));
        }
        return full;
    }

    /// <summary>Whether <paramref name="fullPath"/> is strictly below <paramref name="fullRoot"/> (both full paths).</summary>
    public static bool IsUnder(string fullRoot, string fullPath)
    {
        var root = Path.TrimEndingDirectorySeparator(fullRoot);
        var comparison = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return fullPath.Length > root.Length + 1
            && fullPath.StartsWith(root, comparison)
            && (fullPath[root.Length] == Path.DirectorySeparatorChar || fullPath[root.Length] == Path.AltDirectorySeparatorChar);
    }

    private static string Printable(string value)
    {
        var chars = value.Select(c => char.IsControl(c) ? '?' : c).ToArray();
        return new string(chars);
    }
}
