namespace Kawa.Dataflow.Cli.Configuration;

/// <summary>"Did you mean" for misspelt keys and names.</summary>
internal static class Suggest
{
    /// <summary>The closest candidate within a small edit distance (case-insensitive), or <see langword="null"/>.</summary>
    public static string? Closest(string input, IEnumerable<string> candidates)
    {
        if (input.Length < 3)
        {
            return null; // Too short to guess from ("=~" is not a typo of "==").
        }

        string? best = null;
        var bestDistance = int.MaxValue;
        var limit = Math.Max(1, Math.Min(3, input.Length / 3));
        foreach (var candidate in candidates)
        {
            var d = Distance(input.ToLowerInvariant(), candidate.ToLowerInvariant());
            if (d < bestDistance)
            {
                bestDistance = d;
                best = candidate;
            }
        }

        return bestDistance <= limit ? best : null;
    }

    /// <summary>" (did you mean 'x'?)" or the empty string.</summary>
    public static string DidYouMean(string input, IEnumerable<string> candidates)
        => Closest(input, candidates) is { } match ? $" (did you mean '{match}'?)" : string.Empty;

    // Optimal string alignment distance: a transposition ("paralelism" vs "parallelism" is one insertion) counts as one edit.
    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
    }
}
